/*
 * Sealing: ChaCha20-Poly1305 authenticated encryption of the messages a
 * node sends or parks (uplink batches). A sealed message names its key by
 * kid, so keys can be rotated, and its associated data binds the header,
 * the node id and the sequence number, so a batch cannot be replayed as
 * another node's or another sequence's, nor have its header swapped,
 * without failing to open. Formats: docs/internals/sec.md.
 */
#include <string.h>

#include "outpost/err.h"
#include "outpost/sec.h"
#include "sec_int.h"

#define SEAL_MAGIC     "OPS1"
#define SEAL_MAGIC_LEN 4
/* The version/algorithm byte: 1 is ChaCha20-Poly1305 with a random
 * 96-bit nonce. A new algorithm or layout takes a new value. */
#define SEAL_V1_CHACHA20_POLY1305 1
#define SEAL_KEY_MAGIC            "outpost-seal-key v1"
/* The kid's domain prefix with its NUL: 20 bytes. */
#define SEAL_KID_DOMAIN     "outpost-seal-kid-v1"
#define SEAL_KID_DOMAIN_LEN 20

/* Header layout: magic | version | kid | nonce. */
#define OFF_VERSION SEAL_MAGIC_LEN
#define OFF_KID     (OFF_VERSION + 1)
#define OFF_NONCE   (OFF_KID + OP_KID_LEN)

_Static_assert(OFF_NONCE + SEC_AEAD_NONCE_LEN == OP_SEAL_HEADER_LEN, "header layout");
_Static_assert(sizeof SEAL_KID_DOMAIN == SEAL_KID_DOMAIN_LEN, "kid domain is 20 bytes");

static void seal_kid_of(const uint8_t key[OP_SEAL_KEY_LEN], uint8_t kid[OP_KID_LEN])
{
    uint8_t buf[SEAL_KID_DOMAIN_LEN + OP_SEAL_KEY_LEN], h[OP_SHA256_LEN];
    /* Domain-separated, so the kid is not the hash of the bare key that
     * some other use of the same bytes might publish. */
    memcpy(buf, SEAL_KID_DOMAIN, SEAL_KID_DOMAIN_LEN);
    memcpy(buf + SEAL_KID_DOMAIN_LEN, key, OP_SEAL_KEY_LEN);
    op_sec_sha256(buf, sizeof buf, h);
    memcpy(kid, h, OP_KID_LEN);
    explicit_bzero(buf, sizeof buf);
}

int op_sec_seal_keygen(struct op_seal_key *k)
{
    int rc = op_sec_random(k->key, sizeof k->key);
    if (rc == OP_OK)
        seal_kid_of(k->key, k->kid);
    else
        op_sec_seal_key_wipe(k);
    return rc;
}

void op_sec_seal_key_wipe(struct op_seal_key *k)
{
    explicit_bzero(k, sizeof *k);
}

static const struct sec__keyfile_kind seal_file = { SEAL_KEY_MAGIC, seal_kid_of };

int op_sec_seal_key_write(const struct op_seal_key *k, const char *path)
{
    return sec__keyfile_write(&seal_file, path, k->key, k->kid, 0600);
}

int op_sec_seal_key_parse(struct op_seal_key *k, const char *text, size_t len)
{
    return sec__keyfile_read(&seal_file, NULL, text, len, k->key, k->kid);
}

int op_sec_seal_key_load(struct op_seal_key *k, const char *path)
{
    return sec__keyfile_read(&seal_file, path, NULL, 0, k->key, k->kid);
}

/* The associated data: header || seq (8 bytes, big-endian) || node id.
 * Header and seq have fixed lengths and the AEAD authenticates the total
 * length, so the node id needs no length prefix. */
static void make_ad(struct op_str ad[3], uint8_t seqbuf[8], const uint8_t *header, uint64_t seq,
                    const char *node_id)
{
    for (int i = 0; i < 8; i++)
        seqbuf[i] = (uint8_t)(seq >> (56 - 8 * i));
    ad[0] = (struct op_str){ (const char *)header, OP_SEAL_HEADER_LEN };
    ad[1] = (struct op_str){ (const char *)seqbuf, 8 };
    ad[2] = (struct op_str){ node_id, strlen(node_id) };
}

/* Takes back what a failed call appended to out (if any), wiping it first. */
static void truncate_wiped(struct op_buf *out, size_t len)
{
    if (out && out->data && out->len > len) {
        explicit_bzero(out->data + len, out->len - len);
        out->len = len;
        out->data[len] = '\0';
    }
}

int op_sec_seal(const struct op_seal_key *k, const char *node_id, uint64_t seq, const void *pt,
                size_t n, struct op_buf *out)
{
    uint8_t header[OP_SEAL_HEADER_LEN], seqbuf[8], tag[OP_SEAL_TAG_LEN];
    struct op_str ad[3];
    size_t start = out ? out->len : 0;
    int rc = OP_EINVAL;
    if (!k || !node_id || !out || (!pt && n))
        goto fail;
    memcpy(header, SEAL_MAGIC, SEAL_MAGIC_LEN);
    header[OFF_VERSION] = SEAL_V1_CHACHA20_POLY1305;
    memcpy(header + OFF_KID, k->kid, OP_KID_LEN);
    /* A fresh random nonce per message: the sequence number could repeat
     * after a node loses its state, and a repeated nonce under one key
     * would give away plaintext. */
    rc = op_sec_random(header + OFF_NONCE, SEC_AEAD_NONCE_LEN);
    if (rc == OP_OK)
        rc = op_buf_append(out, header, sizeof header);
    if (rc == OP_OK)
        rc = op_buf_append(out, pt, n);
    if (rc != OP_OK)
        goto fail;
    make_ad(ad, seqbuf, header, seq, node_id);
    sec__aead_encrypt(k->key, header + OFF_NONCE, ad, 3,
                      (uint8_t *)out->data + start + OP_SEAL_HEADER_LEN, n, tag);
    rc = op_buf_append(out, tag, sizeof tag);
    if (rc == OP_OK)
        return OP_OK;
fail:
    truncate_wiped(out, start);
    return rc;
}

int op_sec_seal_kid(const void *msg, size_t n, uint8_t kid[OP_KID_LEN])
{
    const uint8_t *m = msg;
    if (!m || n < OP_SEAL_OVERHEAD || memcmp(m, SEAL_MAGIC, SEAL_MAGIC_LEN) != 0 ||
        m[OFF_VERSION] != SEAL_V1_CHACHA20_POLY1305)
        return OP_EINVAL;
    memcpy(kid, m + OFF_KID, OP_KID_LEN);
    return OP_OK;
}

int op_sec_open(const struct op_seal_key *keys, size_t nkeys, const char *node_id, uint64_t seq,
                const void *msg, size_t n, struct op_buf *out)
{
    const uint8_t *m = msg;
    const struct op_seal_key *k = NULL;
    uint8_t kid[OP_KID_LEN], seqbuf[8];
    struct op_str ad[3];
    size_t start = out ? out->len : 0, body;
    int rc = op_sec_seal_kid(msg, n, kid);
    if (rc == OP_OK && (!node_id || !out || (!keys && nkeys)))
        rc = OP_EINVAL;
    if (rc != OP_OK)
        goto fail;
    /* Kids are public, so an ordinary comparison is fine. */
    for (size_t i = 0; i < nkeys && !k; i++)
        if (memcmp(keys[i].kid, kid, OP_KID_LEN) == 0)
            k = &keys[i];
    if (!k) {
        rc = OP_ENOTFOUND;
        goto fail;
    }
    body = n - OP_SEAL_OVERHEAD;
    rc = op_buf_append(out, m + OP_SEAL_HEADER_LEN, body);
    if (rc != OP_OK)
        goto fail;
    make_ad(ad, seqbuf, m, seq, node_id);
    rc = sec__aead_decrypt(k->key, m + OFF_NONCE, ad, 3, (uint8_t *)out->data + start, body,
                           m + n - OP_SEAL_TAG_LEN);
    if (rc == OP_OK)
        return OP_OK;
fail:
    truncate_wiped(out, start);
    return rc;
}
