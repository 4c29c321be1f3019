/*
 * `outpost key gen`, `outpost sign` and `outpost verify`: make an Ed25519
 * signing key pair or a sealing key, write a detached signature for a file
 * (a model, an update) and check one. The formats are in
 * docs/internals/sec.md; this file only turns arguments into calls of
 * sec/ and its result codes into messages and exit statuses.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_int.h"
#include "outpost/err.h"
#include "outpost/sec.h"
#include "outpost/util.h"

#define DEFAULT_SIGN_PREFIX "outpost-signing"
#define DEFAULT_SEAL_PREFIX "outpost-sealing"
/* A signature file is one line of OP_SIG_TEXT_SIZE - 1 bytes; anything much
 * larger is not one and is not read whole. */
#define SIG_FILE_MAX 4096
#define PATH_SIZE    4096

static void key_usage(FILE *out)
{
    fprintf(out, "usage: outpost key gen [--seal] [--out PREFIX]\n\n"
                 "  (signing) writes PREFIX.key (secret, mode 0600) and PREFIX.pub;\n"
                 "            default prefix " DEFAULT_SIGN_PREFIX "\n"
                 "  --seal    writes a ChaCha20-Poly1305 sealing key PREFIX.key (mode 0600);\n"
                 "            default prefix " DEFAULT_SEAL_PREFIX "\n"
                 "Prints the key id. Existing files are never replaced.\n");
}

static void sign_usage(FILE *out)
{
    fprintf(out, "usage: outpost sign FILE [--key KEYFILE] [--out SIGFILE]\n\n"
                 "  --key  secret key (default " DEFAULT_SIGN_PREFIX ".key)\n"
                 "  --out  signature file to write (default FILE.sig)\n");
}

static void verify_usage(FILE *out)
{
    fprintf(out, "usage: outpost verify FILE [--pub PUBFILE] [--sig SIGFILE]\n\n"
                 "  --pub  public key (default " DEFAULT_SIGN_PREFIX ".pub)\n"
                 "  --sig  signature file (default FILE.sig)\n"
                 "Prints `OK <key id>` and exits 0 if the signature is good, else exits 1.\n");
}

/* Why a key or signature file could not be used, in one line. */
static void report_file(const char *cmd, const char *path, const char *what, int rc)
{
    if (rc == OP_EIO)
        fprintf(stderr, "outpost %s: %s: %s\n", cmd, path, strerror(errno));
    else if (rc == OP_EINVAL)
        fprintf(stderr, "outpost %s: %s: not a valid %s file\n", cmd, path, what);
    else if (rc == OP_ECORRUPT)
        fprintf(stderr,
                "outpost %s: %s: the key id in the %s file does not belong to its key "
                "(damaged or edited)\n",
                cmd, path, what);
    else
        fprintf(stderr, "outpost %s: %s: %s\n", cmd, path, op_err_str(rc));
}

/* PREFIX + suffix into path; false (and a message) if it does not fit. */
static bool make_path(char path[PATH_SIZE], const char *cmd, const char *prefix, const char *suffix)
{
    int n = snprintf(path, PATH_SIZE, "%s%s", prefix, suffix);
    if (n < 0 || n >= PATH_SIZE) {
        fprintf(stderr, "outpost %s: path too long: %s%s\n", cmd, prefix, suffix);
        return false;
    }
    return true;
}

/* Names an existing file before anything is written, so the message says
 * which one; the writes themselves still refuse to replace a file. */
static bool refuse_existing(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return false;
    fprintf(stderr, "outpost key: %s already exists; not replacing a key (move it away first)\n",
            path);
    return true;
}

static int key_gen(const char *prefix, bool seal)
{
    char keypath[PATH_SIZE], pubpath[PATH_SIZE], kid[OP_KID_HEX_SIZE];
    struct op_sign_key sk;
    struct op_seal_key xk;
    int rc, status = 1;
    if (!prefix)
        prefix = seal ? DEFAULT_SEAL_PREFIX : DEFAULT_SIGN_PREFIX;
    if (!make_path(keypath, "key", prefix, ".key") || !make_path(pubpath, "key", prefix, ".pub"))
        return 2;
    if (refuse_existing(keypath) || (!seal && refuse_existing(pubpath)))
        return 1;
    if (seal) {
        rc = op_sec_seal_keygen(&xk);
        if (rc == OP_OK)
            rc = op_sec_seal_key_write(&xk, keypath);
        op_sec_kid_hex(xk.kid, kid);
        op_sec_seal_key_wipe(&xk);
    } else {
        rc = op_sec_sign_keygen(&sk);
        if (rc == OP_OK)
            rc = op_sec_sign_key_write(&sk, keypath, pubpath);
        op_sec_kid_hex(sk.kid, kid);
        op_sec_sign_key_wipe(&sk);
    }
    if (rc == OP_EIO)
        fprintf(stderr, "outpost key: %s: %s\n", seal ? keypath : prefix, strerror(errno));
    else if (rc != OP_OK)
        fprintf(stderr, "outpost key: %s\n", op_err_str(rc));
    if (rc == OP_OK) {
        printf("kid %s\n", kid);
        printf("wrote %s (%s key, secret, mode 0600)\n", keypath,
               seal ? "ChaCha20-Poly1305 sealing" : "Ed25519 signing");
        if (!seal)
            printf("wrote %s (public key: give this to verifiers)\n", pubpath);
        status = 0;
    }
    return status;
}

int op_cli_key(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "out", required_argument, NULL, 'o' },
        { "seal", no_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *prefix = NULL;
    bool seal = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'o') {
            prefix = optarg;
        } else if (c == 's') {
            seal = true;
        } else if (c == 'h') {
            key_usage(stdout);
            return 0;
        } else {
            key_usage(stderr);
            return 2;
        }
    }
    if (argc - optind != 1 || strcmp(argv[optind], "gen") != 0 || (prefix && !prefix[0])) {
        key_usage(stderr);
        return 2;
    }
    return key_gen(prefix, seal);
}

static int write_sig(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "outpost sign: %s: %s\n", path, strerror(errno));
        return OP_EIO;
    }
    int bad = fputs(text, f) == EOF;
    bad |= fclose(f) != 0;
    if (bad) {
        fprintf(stderr, "outpost sign: %s: write failed\n", path);
        return OP_EIO;
    }
    return OP_OK;
}

/* Parses `CMD FILE [--KEYOPT PATH] [--SIGOPT PATH]`; the signature path
 * defaults to FILE.sig (in defsig). 0, -1 after --help, or an exit status. */
static int file_args(int argc, char **argv, const char *keyopt, const char *sigopt,
                     void (*usage)(FILE *), const char **file, const char **key, const char **sig,
                     char defsig[PATH_SIZE])
{
    const struct option longopts[] = {
        { keyopt, required_argument, NULL, 'k' },
        { sigopt, required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'k') {
            *key = optarg;
        } else if (c == 'o') {
            *sig = optarg;
        } else if (c == 'h') {
            usage(stdout);
            return -1;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (argc - optind != 1 || !argv[optind][0]) {
        usage(stderr);
        return 2;
    }
    *file = argv[optind];
    if (!*sig) {
        if (!make_path(defsig, argv[0], *file, ".sig"))
            return 2;
        *sig = defsig;
    }
    return 0;
}

int op_cli_sign(int argc, char **argv)
{
    const char *file = NULL, *keypath = DEFAULT_SIGN_PREFIX ".key", *sigpath = NULL;
    char defsig[PATH_SIZE], sig[OP_SIG_TEXT_SIZE], kid[OP_KID_HEX_SIZE];
    uint8_t h[OP_SIGN_HASH_LEN];
    struct op_sign_key k;
    int status =
        file_args(argc, argv, "key", "out", sign_usage, &file, &keypath, &sigpath, defsig);
    if (status)
        return status < 0 ? 0 : status;
    int rc = op_sec_sign_key_load(&k, keypath);
    if (rc != OP_OK) {
        report_file("sign", keypath, "Ed25519 secret key", rc);
        return 1;
    }
    rc = op_sec_sign_hash_file(file, h);
    if (rc != OP_OK)
        report_file("sign", file, "", rc);
    if (rc == OP_OK) {
        op_sec_sign_hashed(&k, h, sig);
        op_sec_kid_hex(k.kid, kid);
        rc = write_sig(sigpath, sig);
    }
    op_sec_sign_key_wipe(&k);
    if (rc != OP_OK)
        return 1;
    printf("signed %s with key %s: %s\n", file, kid, sigpath);
    return 0;
}

int op_cli_verify(int argc, char **argv)
{
    const char *file = NULL, *pubpath = DEFAULT_SIGN_PREFIX ".pub", *sigpath = NULL;
    char defsig[PATH_SIZE], kid[OP_KID_HEX_SIZE], sigkid[OP_KID_HEX_SIZE];
    uint8_t h[OP_SIGN_HASH_LEN];
    struct op_verify_key k;
    struct op_sig parsed;
    char *sig = NULL;
    size_t siglen = 0;
    int status =
        file_args(argc, argv, "pub", "sig", verify_usage, &file, &pubpath, &sigpath, defsig);
    if (status)
        return status < 0 ? 0 : status;
    int rc = op_sec_verify_key_load(&k, pubpath);
    if (rc != OP_OK) {
        report_file("verify", pubpath, "Ed25519 public key", rc);
        goto out;
    }
    op_sec_kid_hex(k.kid, kid);
    rc = op_sec_sign_hash_file(file, h);
    if (rc != OP_OK) {
        report_file("verify", file, "", rc);
        goto out;
    }
    rc = op_file_read_all(sigpath, SIG_FILE_MAX, &sig, &siglen);
    if (rc != OP_OK) {
        report_file("verify", sigpath, "signature", rc == OP_ETOOBIG ? OP_EINVAL : rc);
        goto out;
    }
    rc = op_sec_verify_hashed(&k, h, sig, siglen);
    if (rc == OP_OK) {
        printf("OK %s\n", kid);
    } else if (rc == OP_ENOTFOUND && op_sec_sig_parse(&parsed, sig, siglen) == OP_OK) {
        op_sec_kid_hex(parsed.kid, sigkid);
        fprintf(stderr,
                "outpost verify: key id mismatch: %s was made by key %s, but %s is key %s\n",
                sigpath, sigkid, pubpath, kid);
    } else if (rc == OP_ECORRUPT) {
        fprintf(stderr,
                "outpost verify: %s: BAD signature (key %s): the file or %s has been changed\n",
                file, kid, sigpath);
    } else {
        report_file("verify", sigpath, "signature", rc);
    }
out:
    op_free(sig);
    return rc == OP_OK ? 0 : 1;
}
