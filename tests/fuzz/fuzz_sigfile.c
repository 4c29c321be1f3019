/*
 * libFuzzer target for signature files and key files, read from disk
 * before a model or an update is trusted. The input is parsed as a
 * signature file (op_sec_sig_parse) and checked against a fixed message
 * and public key (op_sec_verify); Ed25519 here is deterministic and the
 * text canonical, so the only input that verifies is the one signature
 * op_sec_sign writes (with or without its newline). The same bytes are
 * also parsed as each kind of key file.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "outpost/err.h"
#include "outpost/sec.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A test key pair, published here and never used for anything else. */
static const char secret_text[] = "outpost-ed25519-secret v1\n"
                                  "kid 2269a44ae9779449\n"
                                  "key WFUcOn3bC6/eEObw5PAiT/jW4XNVBE6SXqPkYwCijKY=\n";
static const char public_text[] = "outpost-ed25519-public v1\n"
                                  "kid 2269a44ae9779449\n"
                                  "key pI92yGmFomFw4G/tym7IlqeYoQdMI0E0j3NIKCKlcuw=\n";
static const char message[] = "model weights v1\n";

static struct op_verify_key pub;
static char good[OP_SIG_TEXT_SIZE]; /* the signature of message */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    struct op_sign_key sk;
    if (op_sec_sign_key_parse(&sk, secret_text, sizeof secret_text - 1) != OP_OK ||
        op_sec_verify_key_parse(&pub, public_text, sizeof public_text - 1) != OP_OK)
        abort();
    op_sec_sign(&sk, message, sizeof message - 1, good);
    op_sec_sign_key_wipe(&sk);
    if (op_sec_verify(&pub, message, sizeof message - 1, good, strlen(good)) != OP_OK)
        abort();
    return 0;
}

static void key_files(const char *text, size_t len)
{
    struct op_sign_key sk;
    struct op_verify_key vk;
    struct op_seal_key k;
    int rc = op_sec_sign_key_parse(&sk, text, len);
    if (rc != OP_OK && rc != OP_EINVAL && rc != OP_ECORRUPT)
        __builtin_trap();
    op_sec_sign_key_wipe(&sk);
    rc = op_sec_verify_key_parse(&vk, text, len);
    if (rc != OP_OK && rc != OP_EINVAL && rc != OP_ECORRUPT)
        __builtin_trap();
    rc = op_sec_seal_key_parse(&k, text, len);
    if (rc != OP_OK && rc != OP_EINVAL && rc != OP_ECORRUPT)
        __builtin_trap();
    op_sec_seal_key_wipe(&k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so ASan sees any read past len. */
    char *text = op_malloc(size ? size : 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    struct op_sig s;
    int prc = op_sec_sig_parse(&s, text, size);
    int rc = op_sec_verify(&pub, message, sizeof message - 1, text, size);
    if (prc != OP_OK && prc != OP_EINVAL)
        __builtin_trap();
    if ((prc == OP_EINVAL) != (rc == OP_EINVAL))
        __builtin_trap();
    if (prc == OP_OK && memcmp(s.kid, pub.kid, OP_KID_LEN) && rc != OP_ENOTFOUND)
        __builtin_trap();
    if (rc == OP_OK) {
        size_t glen = strlen(good) - 1; /* without its newline */
        if ((size != glen && size != glen + 1) || memcmp(text, good, size))
            __builtin_trap();
    } else if (rc != OP_EINVAL && rc != OP_ENOTFOUND && rc != OP_ECORRUPT) {
        __builtin_trap();
    }
    key_files(text, size);
    op_free(text);
    return 0;
}
