/*
 * Ed25519 detached signatures, for files a node must trust before using
 * them (models, updates), and the key-file format that signing and sealing
 * share. A signature covers a domain-separated prehash,
 * "outpost-sign-v1\0" || SHA-512(bytes), so a file of any size is hashed
 * once in a stream (or from a mapping) and the key can never be tricked
 * into signing something that means something else elsewhere. Formats:
 * docs/internals/sec.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outpost/err.h"
#include "outpost/sec.h"
#include "sec_int.h"

#define SIGN_SECRET_MAGIC "outpost-ed25519-secret v1"
#define SIGN_PUBLIC_MAGIC "outpost-ed25519-public v1"
/* The domain prefix with its NUL: 16 bytes. */
#define SIGN_DOMAIN     "outpost-sign-v1"
#define SIGN_DOMAIN_LEN 16
#define SIG_PREFIX      "outpost-sig v1 ed25519 "
#define SIG_PREFIX_LEN  (sizeof SIG_PREFIX - 1)
#define SIG_B64_LEN     SEC_B64_LEN(OP_ED25519_SIG_LEN)
/* Key files are three short lines; anything longer is not one. */
#define KEYFILE_MAX 4096
#define KEY_LEN     32
/* Files are hashed through a buffer of this size. */
#define HASH_CHUNK ((size_t)64 << 10)

_Static_assert(sizeof SIGN_DOMAIN == SIGN_DOMAIN_LEN, "domain prefix is 16 bytes with its NUL");
_Static_assert(SIG_PREFIX_LEN + 2 * OP_KID_LEN + 1 + SIG_B64_LEN + 1 + 1 == OP_SIG_TEXT_SIZE,
               "OP_SIG_TEXT_SIZE matches the signature line");
_Static_assert(KEY_LEN == OP_ED25519_KEY_LEN && KEY_LEN == OP_SEAL_KEY_LEN, "key sizes");

void sec__hex_encode(char *dst, const uint8_t *src, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        dst[2 * i] = digits[src[i] >> 4];
        dst[2 * i + 1] = digits[src[i] & 15];
    }
}

void op_sec_kid_hex(const uint8_t kid[OP_KID_LEN], char hex[OP_KID_HEX_SIZE])
{
    sec__hex_encode(hex, kid, OP_KID_LEN);
    hex[2 * OP_KID_LEN] = '\0';
}

static int hex_value(char c)
{
    /* Lower case only: one spelling per kid, so a changed character always
     * changes the value. */
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int sec__hex_decode(uint8_t *dst, size_t n, const char *src, size_t len)
{
    if (len != 2 * n)
        return OP_EINVAL;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_value(src[2 * i]), lo = hex_value(src[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return OP_EINVAL;
        dst[i] = (uint8_t)(hi << 4 | lo);
    }
    return OP_OK;
}

/* ---- key files --------------------------------------------------------- */

/* The next line of text[*off..len) without its newline; the last line's
 * newline is optional. OP_EINVAL at the end of the text. */
static int take_line(const char *text, size_t len, size_t *off, struct op_str *line)
{
    if (*off >= len)
        return OP_EINVAL;
    const char *nl = memchr(text + *off, '\n', len - *off);
    size_t end = nl ? (size_t)(nl - text) : len;
    line->p = text + *off;
    line->len = end - *off;
    *off = nl ? end + 1 : len;
    return OP_OK;
}

/* "<name> <value>": the value, or OP_EINVAL if the name differs. */
static int field(struct op_str line, const char *name, struct op_str *value)
{
    size_t n = strlen(name);
    if (line.len <= n || memcmp(line.p, name, n) != 0 || line.p[n] != ' ')
        return OP_EINVAL;
    value->p = line.p + n + 1;
    value->len = line.len - n - 1;
    return OP_OK;
}

/* Checks the layout only; the caller checks that the kid is the key's. */
static int keyfile_parse(const char *text, size_t len, const char *magic,
                         uint8_t kid[OP_KID_LEN], uint8_t key[KEY_LEN])
{
    struct op_str head, kidline, keyline, v;
    size_t off = 0;
    int rc = OP_EINVAL;
    if (len > KEYFILE_MAX || take_line(text, len, &off, &head) ||
        take_line(text, len, &off, &kidline) || take_line(text, len, &off, &keyline) || off != len)
        goto out;
    if (!op_str_eq(head, magic))
        goto out;
    if (field(kidline, "kid", &v) || sec__hex_decode(kid, OP_KID_LEN, v.p, v.len))
        goto out;
    if (field(keyline, "key", &v) || sec__b64_decode(key, KEY_LEN, v.p, v.len))
        goto out;
    rc = OP_OK;
out:
    if (rc != OP_OK) {
        explicit_bzero(kid, OP_KID_LEN);
        explicit_bzero(key, KEY_LEN);
    }
    return rc;
}

int sec__keyfile_read(const struct sec__keyfile_kind *kind, const char *path, const char *text,
                      size_t len, uint8_t key[KEY_LEN], uint8_t kid[OP_KID_LEN])
{
    char *data = NULL;
    uint8_t claimed[OP_KID_LEN];
    int rc = OP_OK;
    if (path) {
        rc = op_file_read_all(path, KEYFILE_MAX, &data, &len);
        rc = rc == OP_ETOOBIG ? OP_EINVAL : rc;
        text = data;
    }
    if (rc == OP_OK)
        rc = keyfile_parse(text, len, kind->magic, claimed, key);
    /* The kid is derived, never trusted: a file whose kid is not its key's
     * was damaged or edited, and would send verifiers to the wrong key. */
    if (rc == OP_OK) {
        kind->kid_of(key, kid);
        if (memcmp(claimed, kid, OP_KID_LEN) != 0)
            rc = OP_ECORRUPT;
    }
    if (rc != OP_OK) {
        explicit_bzero(key, KEY_LEN);
        explicit_bzero(kid, OP_KID_LEN);
    }
    if (data) {
        /* The text may hold a secret key. */
        explicit_bzero(data, len);
        op_free(data);
    }
    return rc;
}

int sec__keyfile_write(const struct sec__keyfile_kind *kind, const char *path,
                       const uint8_t key[KEY_LEN], const uint8_t kid[OP_KID_LEN], mode_t mode)
{
    char text[KEYFILE_MAX], hex[OP_KID_HEX_SIZE], b64[SEC_B64_LEN(KEY_LEN)];
    int fd = -1, rc = OP_OK, saved;
    op_sec_kid_hex(kid, hex);
    sec__b64_encode(b64, key, KEY_LEN);
    int len = snprintf(text, sizeof text, "%s\nkid %s\nkey %.*s\n", kind->magic, hex,
                       (int)sizeof b64, b64);
    if (len < 0 || (size_t)len >= sizeof text) {
        rc = OP_EINVAL;
        goto out;
    }
    /* O_EXCL: a key is never silently replaced, and a link planted at
     * path is not followed. The mode is set at creation, so the secret is
     * never readable by others, not even briefly. */
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
        rc = OP_EIO;
        goto out;
    }
    for (size_t done = 0; done < (size_t)len;) {
        ssize_t w = write(fd, text + done, (size_t)len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = OP_EIO;
            goto out;
        }
        done += (size_t)w;
    }
    /* A key that vanishes in a power cut after it was handed out is worse
     * than a slow key generation. */
    if (fsync(fd) != 0)
        rc = OP_EIO;
out:
    saved = errno;
    if (fd >= 0 && close(fd) != 0 && rc == OP_OK) {
        rc = OP_EIO;
        saved = errno;
    }
    if (fd >= 0 && rc != OP_OK)
        unlink(path);
    explicit_bzero(text, sizeof text);
    explicit_bzero(b64, sizeof b64);
    errno = saved;
    return rc;
}

/* ---- keys ---------------------------------------------------------------- */

static void kid_of_pub(const uint8_t pub[OP_ED25519_KEY_LEN], uint8_t kid[OP_KID_LEN])
{
    uint8_t h[OP_SHA256_LEN];
    op_sec_sha256(pub, OP_ED25519_KEY_LEN, h);
    memcpy(kid, h, OP_KID_LEN);
}

static void kid_of_seed(const uint8_t seed[OP_ED25519_KEY_LEN], uint8_t kid[OP_KID_LEN])
{
    uint8_t pub[OP_ED25519_KEY_LEN];
    sec__ed25519_public_key(pub, seed);
    kid_of_pub(pub, kid);
}

static const struct sec__keyfile_kind secret_file = { SIGN_SECRET_MAGIC, kid_of_seed };
static const struct sec__keyfile_kind public_file = { SIGN_PUBLIC_MAGIC, kid_of_pub };

int op_sec_sign_keygen(struct op_sign_key *k)
{
    int rc = op_sec_random(k->seed, sizeof k->seed);
    if (rc == OP_OK) {
        sec__ed25519_public_key(k->pub, k->seed);
        kid_of_pub(k->pub, k->kid);
    } else {
        op_sec_sign_key_wipe(k);
    }
    return rc;
}

void op_sec_sign_key_wipe(struct op_sign_key *k)
{
    explicit_bzero(k, sizeof *k);
}

void op_sec_sign_key_public(const struct op_sign_key *k, struct op_verify_key *pub)
{
    memcpy(pub->pub, k->pub, sizeof pub->pub);
    memcpy(pub->kid, k->kid, sizeof pub->kid);
}

int op_sec_sign_key_write(const struct op_sign_key *k, const char *key_path, const char *pub_path)
{
    int rc = sec__keyfile_write(&secret_file, key_path, k->seed, k->kid, 0600);
    if (rc == OP_OK) {
        rc = sec__keyfile_write(&public_file, pub_path, k->pub, k->kid, 0644);
        /* A secret without its public half would be a key nobody can
         * check: take it back. */
        if (rc != OP_OK) {
            int saved = errno;
            unlink(key_path);
            errno = saved;
        }
    }
    return rc;
}

/* Reads a secret key file from path, or from text if path is NULL. */
static int sign_key_read(struct op_sign_key *k, const char *path, const char *text, size_t len)
{
    int rc = sec__keyfile_read(&secret_file, path, text, len, k->seed, k->kid);
    if (rc == OP_OK)
        sec__ed25519_public_key(k->pub, k->seed);
    else
        op_sec_sign_key_wipe(k);
    return rc;
}

int op_sec_sign_key_parse(struct op_sign_key *k, const char *text, size_t len)
{
    return sign_key_read(k, NULL, text, len);
}

int op_sec_sign_key_load(struct op_sign_key *k, const char *path)
{
    return sign_key_read(k, path, NULL, 0);
}

int op_sec_verify_key_parse(struct op_verify_key *k, const char *text, size_t len)
{
    return sec__keyfile_read(&public_file, NULL, text, len, k->pub, k->kid);
}

int op_sec_verify_key_load(struct op_verify_key *k, const char *path)
{
    return sec__keyfile_read(&public_file, path, NULL, 0, k->pub, k->kid);
}

/* ---- hashing, signing, verifying ------------------------------------------- */

void op_sec_sign_hash(const void *p, size_t n, uint8_t h[OP_SIGN_HASH_LEN])
{
    struct sec__sha512 s;
    sec__sha512_init(&s);
    sec__sha512_update(&s, p, n);
    sec__sha512_digest(&s, h);
}

int op_sec_sign_hash_file(const char *path, uint8_t h[OP_SIGN_HASH_LEN])
{
    struct sec__sha512 s;
    int rc = OP_OK, saved = 0;
    uint8_t *buf = op_malloc(HASH_CHUNK);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || !buf) {
        rc = fd < 0 ? OP_EIO : OP_ENOMEM;
        saved = errno;
        goto out;
    }
    sec__sha512_init(&s);
    for (;;) {
        ssize_t got = read(fd, buf, HASH_CHUNK);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = OP_EIO;
            saved = errno;
            break;
        }
        if (got == 0)
            break;
        sec__sha512_update(&s, buf, (size_t)got);
    }
    sec__sha512_digest(&s, h);
    /* Never hand out the hash of part of a file. */
    if (rc != OP_OK)
        explicit_bzero(h, OP_SIGN_HASH_LEN);
out:
    if (fd >= 0)
        close(fd);
    op_free(buf);
    errno = saved;
    return rc;
}

/* The bytes Ed25519 actually signs: the domain prefix and the prehash. */
static void signed_message(const uint8_t h[OP_SIGN_HASH_LEN],
                           uint8_t msg[SIGN_DOMAIN_LEN + OP_SIGN_HASH_LEN])
{
    memcpy(msg, SIGN_DOMAIN, SIGN_DOMAIN_LEN);
    memcpy(msg + SIGN_DOMAIN_LEN, h, OP_SIGN_HASH_LEN);
}

void op_sec_sign_hashed(const struct op_sign_key *k, const uint8_t h[OP_SIGN_HASH_LEN],
                        char sig[OP_SIG_TEXT_SIZE])
{
    uint8_t msg[SIGN_DOMAIN_LEN + OP_SIGN_HASH_LEN], s[OP_ED25519_SIG_LEN];
    char *p = sig;
    signed_message(h, msg);
    sec__ed25519_sign(k->pub, k->seed, msg, sizeof msg, s);
    memcpy(p, SIG_PREFIX, SIG_PREFIX_LEN);
    p += SIG_PREFIX_LEN;
    op_sec_kid_hex(k->kid, p);
    p += 2 * OP_KID_LEN;
    *p++ = ' ';
    sec__b64_encode(p, s, sizeof s);
    p += SIG_B64_LEN;
    *p++ = '\n';
    *p = '\0';
}

void op_sec_sign(const struct op_sign_key *k, const void *p, size_t n, char sig[OP_SIG_TEXT_SIZE])
{
    uint8_t h[OP_SIGN_HASH_LEN];
    op_sec_sign_hash(p, n, h);
    op_sec_sign_hashed(k, h, sig);
}

int op_sec_sig_parse(struct op_sig *s, const char *text, size_t len)
{
    /* The line without its newline; a newline, if present, ends the text. */
    const size_t line = OP_SIG_TEXT_SIZE - 2;
    const char *kid, *b64;
    int rc = OP_EINVAL;
    if (!(len == line || (len == line + 1 && text[line] == '\n')))
        goto out;
    kid = text + SIG_PREFIX_LEN;
    b64 = kid + 2 * OP_KID_LEN + 1;
    if (memcmp(text, SIG_PREFIX, SIG_PREFIX_LEN) != 0 || kid[2 * OP_KID_LEN] != ' ')
        goto out;
    if (sec__hex_decode(s->kid, OP_KID_LEN, kid, 2 * OP_KID_LEN) ||
        sec__b64_decode(s->sig, OP_ED25519_SIG_LEN, b64, SIG_B64_LEN))
        goto out;
    rc = OP_OK;
out:
    if (rc != OP_OK)
        memset(s, 0, sizeof *s);
    return rc;
}

int op_sec_verify_hashed(const struct op_verify_key *k, const uint8_t h[OP_SIGN_HASH_LEN],
                         const char *sig, size_t siglen)
{
    struct op_sig s;
    uint8_t msg[SIGN_DOMAIN_LEN + OP_SIGN_HASH_LEN];
    int rc = op_sec_sig_parse(&s, sig, siglen);
    if (rc == OP_OK && memcmp(s.kid, k->kid, OP_KID_LEN) != 0)
        rc = OP_ENOTFOUND;
    if (rc == OP_OK) {
        signed_message(h, msg);
        rc = sec__ed25519_verify(k->pub, msg, sizeof msg, s.sig) ? OP_OK : OP_ECORRUPT;
    }
    return rc;
}

int op_sec_verify(const struct op_verify_key *k, const void *p, size_t n, const char *sig,
                  size_t siglen)
{
    uint8_t h[OP_SIGN_HASH_LEN];
    op_sec_sign_hash(p, n, h);
    return op_sec_verify_hashed(k, h, sig, siglen);
}
