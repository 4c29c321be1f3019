/*
 * sec: TLS contexts (server, client, mutual), tokens and roles, the
 * failed-authentication limiter, Ed25519 signing and ChaCha20-Poly1305
 * sealing. GnuTLS (and Nettle, its crypto library) is the one crypto stack:
 * libmicrohttpd's TLS is GnuTLS, so the server, the client and the
 * primitives share one library (docs/design.md). May call util and core.
 */
#ifndef OUTPOST_SEC_H
#define OUTPOST_SEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outpost/core.h"
#include "outpost/util.h"

/* ---- roles ----------------------------------------------------------- */

/* What a route needs and what a credential grants. OP_ROLE_UNSET is never
 * valid in the route table, so a new route cannot be added without a
 * decision (a unit test walks the table). admin is granted everything. */
enum op_role {
    OP_ROLE_UNSET = 0,
    OP_ROLE_PUBLIC, /* a route anyone may call (probes) */
    OP_ROLE_INGEST,
    OP_ROLE_READ,
    OP_ROLE_ADMIN,
    OP_ROLE_NODE,
};

/* "ingest" | "read" | "admin" | "node" (and "public" for routes). */
int op_sec_role_parse(const char *s, size_t len, enum op_role *out);
const char *op_sec_role_name(enum op_role r);
/* Whether a credential holding `have` may call a route that needs `need`. */
bool op_sec_role_allows(enum op_role have, enum op_role need);

/* ---- tokens ---------------------------------------------------------- */

#define OP_TOKEN_PREFIX "opt_"
#define OP_TOKEN_LEN 68      /* "opt_" + 64 hex digits (32 random bytes) */
#define OP_SHA256_LEN 32

/* The configured credentials: token hashes (never tokens) and client
 * certificate subjects, each with a role. Immutable once built; safe to
 * read from any thread. */
struct op_auth;

/* Builds the set from the config's auth.token and auth.cert_role lines.
 * A bad line returns OP_EINVAL with its file and line in d. */
int op_sec_auth_create(struct op_auth **out, const struct op_config *cfg, struct op_diag *d);
void op_sec_auth_destroy(struct op_auth *a);
/* Whether any credential is configured (then every non-public route needs
 * one). */
bool op_sec_auth_enabled(const struct op_auth *a);

/* Extracts the token from an Authorization header value
 * ("Bearer <token>", scheme case-insensitive). OP_EINVAL if malformed. */
int op_sec_bearer_parse(const char *value, size_t len, struct op_str *token);
/* Finds the token's role by comparing its SHA-256 with every configured
 * hash in constant time. OP_ENOTFOUND if unknown. *name (may be NULL)
 * points into a, valid while a lives. */
int op_sec_token_lookup(const struct op_auth *a, struct op_str token, enum op_role *role,
                        const char **name);
/* The role mapped to a verified client-certificate common name. */
int op_sec_cert_role(const struct op_auth *a, const char *cn, enum op_role *role);

/* Makes a new random token (OP_TOKEN_LEN + 1 bytes in token) and the
 * auth.token config line that holds its hash ("NAME ROLE sha256:HEX").
 * name may be NULL (a name is derived from the hash). */
int op_sec_token_generate(enum op_role role, const char *name, char *token, size_t tokenlen,
                          char *line, size_t linelen);

/* ---- failed-authentication limiter ------------------------------------ */

/* Counts authentication failures per client address in a fixed table;
 * an address past `max` failures within `window_ms` is refused until the
 * window ends. Thread-safe; memory is fixed at create. */
struct op_limiter;
int op_sec_limiter_create(struct op_limiter **out, int max, int64_t window_ms);
void op_sec_limiter_destroy(struct op_limiter *l);
/* 0 if addr may try, else the milliseconds until it may. */
int64_t op_sec_limiter_check(struct op_limiter *l, const void *addr, size_t addrlen,
                             int64_t now_ms);
void op_sec_limiter_fail(struct op_limiter *l, const void *addr, size_t addrlen, int64_t now_ms);

/* ---- TLS ------------------------------------------------------------- */

/* The server's TLS material, loaded from tls.cert, tls.key and
 * tls.client_ca: PEM text handed to the HTTP library, plus the GnuTLS
 * priority string for tls.min_version. */
struct op_tls_server {
    char *cert_pem;
    char *key_pem;
    char *client_ca_pem; /* NULL: no mutual TLS */
    const char *priorities;
};

/* Loads and checks the files (the key matches the certificate, the CA
 * parses). OP_EINVAL with the file and the reason in d. */
int op_sec_tls_server_load(struct op_tls_server *t, const struct op_config *cfg,
                           struct op_diag *d);
void op_sec_tls_server_fini(struct op_tls_server *t);

/* Called with a new connection's TLS session (a gnutls_session_t) before
 * its handshake: makes a client certificate required and verified in the
 * handshake itself, so a missing, expired, self-signed or wrong-CA
 * certificate never gets to send a request. */
void op_sec_tls_session_require_client_cert(void *session);
/* After the handshake: the verified peer certificate's common name into
 * cn. OP_ENOTFOUND when there is no verified certificate. */
int op_sec_tls_peer_cn(void *session, char *cn, size_t cnlen);

/* A TLS client context for outgoing connections (the uplink, the probe):
 * the server's certificate and host name are verified unless verify is
 * off; a client certificate is optional. */
struct op_tls_client;
struct op_tls_client_opts {
    const char *ca_file;   /* NULL: the system's trust store */
    const char *cert_file; /* client certificate for mutual TLS, or NULL */
    const char *key_file;
    bool no_verify;        /* testing only: skip server verification */
    const char *priorities; /* NULL: TLS 1.2 and 1.3 */
};
int op_sec_tls_client_create(struct op_tls_client **out, const struct op_tls_client_opts *o,
                             struct op_diag *d);
void op_sec_tls_client_destroy(struct op_tls_client *c);

/* One TLS connection over a connected socket fd (borrowed; closed by the
 * caller after op_sec_tls_conn_close). server_name is checked against the
 * certificate and sent as SNI. Handshake failures return OP_EIO with the
 * reason in d. */
struct op_tls_conn;
int op_sec_tls_connect(struct op_tls_conn **out, struct op_tls_client *c, int fd,
                       const char *server_name, int timeout_ms, struct op_diag *d);
/* Return bytes moved (> 0), 0 at end of stream, or OP_EIO. */
long op_sec_tls_write(struct op_tls_conn *t, const void *p, size_t n);
long op_sec_tls_read(struct op_tls_conn *t, void *p, size_t n);
void op_sec_tls_conn_close(struct op_tls_conn *t);

/* ---- random and hashing ------------------------------------------------- */

/* Fills p with n bytes from the system CSPRNG (via GnuTLS). */
int op_sec_random(void *p, size_t n);
void op_sec_sha256(const void *p, size_t n, uint8_t out[OP_SHA256_LEN]);
/* Constant-time equality of two n-byte strings. */
bool op_sec_ct_equal(const void *a, const void *b, size_t n);

/* ---- signing and sealing (sec_sign.c, sec_seal.c) ----------------------- */

/* Detached Ed25519 signatures over files (models, updates) and
 * ChaCha20-Poly1305 sealing of messages (uplink batches). Every key has a
 * key id (kid): 8 bytes that name it in files and messages without
 * revealing it, printed as 16 lower-case hex digits. The file and message
 * formats are in docs/internals/sec.md. Keys are plain values the caller
 * holds; secret ones are wiped with their _wipe function when done. Nothing
 * here keeps state: every function may run on any thread. */

#define OP_KID_LEN 8
#define OP_KID_HEX_SIZE 17   /* 16 hex digits and a NUL */
#define OP_ED25519_KEY_LEN 32
#define OP_ED25519_SIG_LEN 64
#define OP_SIGN_HASH_LEN 64  /* SHA-512: the prehash a signature covers */
/* "outpost-sig v1 ed25519 <16 hex> <88 base64>\n" and a NUL. */
#define OP_SIG_TEXT_SIZE 130

/* Writes kid as 16 lower-case hex digits and a NUL. */
void op_sec_kid_hex(const uint8_t kid[OP_KID_LEN], char hex[OP_KID_HEX_SIZE]);

/* An Ed25519 signing key: the secret seed, its public key and the kid,
 * the first 8 bytes of SHA-256(pub). pub and kid must be the ones derived
 * from seed (keygen, parse and load make them so): Ed25519 signing with a
 * mismatched public key can give the secret away. */
struct op_sign_key {
    uint8_t seed[OP_ED25519_KEY_LEN];
    uint8_t pub[OP_ED25519_KEY_LEN];
    uint8_t kid[OP_KID_LEN];
};

/* The public half, all a verifier needs. */
struct op_verify_key {
    uint8_t pub[OP_ED25519_KEY_LEN];
    uint8_t kid[OP_KID_LEN];
};

/* Makes a new signing key from the system CSPRNG. OP_EIO if that fails. */
int op_sec_sign_keygen(struct op_sign_key *k);
/* Zeroes k so that the secret does not outlive its use. */
void op_sec_sign_key_wipe(struct op_sign_key *k);
/* The public half of k. */
void op_sec_sign_key_public(const struct op_sign_key *k, struct op_verify_key *pub);

/* Creates the secret key file at key_path (mode 0600) and the public key
 * file at pub_path (0644, less the umask). An existing file is never
 * replaced (OP_EIO with errno EEXIST); on any failure neither file is left
 * behind. OP_EIO with errno for a file error. */
int op_sec_sign_key_write(const struct op_sign_key *k, const char *key_path, const char *pub_path);

/* Parse key-file text (len bytes, need not be NUL-terminated) or read and
 * parse the file at path (at most 4 KiB). OP_EINVAL if malformed (or too
 * large); OP_ECORRUPT if well-formed but the kid is not the key's;
 * load adds OP_EIO (cannot read; errno says why) and OP_ENOMEM. On failure
 * *k is zeroed. */
int op_sec_sign_key_parse(struct op_sign_key *k, const char *text, size_t len);
int op_sec_sign_key_load(struct op_sign_key *k, const char *path);
int op_sec_verify_key_parse(struct op_verify_key *k, const char *text, size_t len);
int op_sec_verify_key_load(struct op_verify_key *k, const char *path);

/* The prehash a signature covers: SHA-512 of the signed bytes (the
 * signature itself is over "outpost-sign-v1\0" || this hash, so one key's
 * signatures cannot be replayed into another protocol). hash_file streams
 * the file through a fixed buffer, so files of any size (models, updates)
 * can be signed; OP_EIO with errno, or OP_ENOMEM. */
void op_sec_sign_hash(const void *p, size_t n, uint8_t h[OP_SIGN_HASH_LEN]);
int op_sec_sign_hash_file(const char *path, uint8_t h[OP_SIGN_HASH_LEN]);

/* Signs the bytes p[0..n), or their prehash h, with k and writes the
 * signature file's text into sig: one line with its newline, NUL-terminated
 * (OP_SIG_TEXT_SIZE - 1 characters). Cannot fail. */
void op_sec_sign(const struct op_sign_key *k, const void *p, size_t n, char sig[OP_SIG_TEXT_SIZE]);
void op_sec_sign_hashed(const struct op_sign_key *k, const uint8_t h[OP_SIGN_HASH_LEN],
                        char sig[OP_SIG_TEXT_SIZE]);

/* A parsed signature file. */
struct op_sig {
    uint8_t kid[OP_KID_LEN];
    uint8_t sig[OP_ED25519_SIG_LEN];
};

/* Parses signature-file text (len bytes, need not be NUL-terminated): the
 * one line, its final newline optional, nothing else. OP_EINVAL if
 * malformed. */
int op_sec_sig_parse(struct op_sig *s, const char *text, size_t len);

/* Checks signature-file text sig[0..siglen) against the bytes p[0..n) (or
 * their prehash h) and the public key k. OP_OK if valid; OP_EINVAL if the
 * text is malformed; OP_ENOTFOUND if it names another key (kid differs:
 * op_sec_sig_parse tells which); OP_ECORRUPT if the signature does not
 * match (the bytes or the signature were changed). */
int op_sec_verify(const struct op_verify_key *k, const void *p, size_t n, const char *sig,
                  size_t siglen);
int op_sec_verify_hashed(const struct op_verify_key *k, const uint8_t h[OP_SIGN_HASH_LEN],
                         const char *sig, size_t siglen);

#define OP_SEAL_KEY_LEN 32
#define OP_SEAL_HEADER_LEN 25 /* "OPS1", version/algorithm, kid (8), nonce (12) */
#define OP_SEAL_TAG_LEN 16
#define OP_SEAL_OVERHEAD (OP_SEAL_HEADER_LEN + OP_SEAL_TAG_LEN)

/* A ChaCha20-Poly1305 sealing key and its kid, the first 8 bytes of
 * SHA-256("outpost-seal-kid-v1\0" || key). */
struct op_seal_key {
    uint8_t key[OP_SEAL_KEY_LEN];
    uint8_t kid[OP_KID_LEN];
};

/* Makes a new sealing key from the system CSPRNG. OP_EIO if that fails. */
int op_sec_seal_keygen(struct op_seal_key *k);
void op_sec_seal_key_wipe(struct op_seal_key *k);
/* Creates the key file at path, mode 0600; as op_sec_sign_key_write. */
int op_sec_seal_key_write(const struct op_seal_key *k, const char *path);
/* As op_sec_sign_key_parse and _load. */
int op_sec_seal_key_parse(struct op_seal_key *k, const char *text, size_t len);
int op_sec_seal_key_load(struct op_seal_key *k, const char *path);

/* Seals pt[0..n) for the node node_id (NUL-terminated) and the sequence
 * number seq: appends the header, the ciphertext and the tag
 * (n + OP_SEAL_OVERHEAD bytes) to out. The header travels in clear and is
 * authenticated; node_id and seq are authenticated but not sent, so the
 * receiver must know them. Every call draws a fresh random nonce, so one key should seal well
 * under 2^32 messages before it is rotated. pt must not point into out.
 * OP_EINVAL (NULL argument), OP_EIO (no randomness), OP_ETOOBIG (past
 * out's cap), OP_ENOMEM; on failure out is as it was. */
int op_sec_seal(const struct op_seal_key *k, const char *node_id, uint64_t seq, const void *pt,
                size_t n, struct op_buf *out);

/* Opens msg[0..n) with whichever of keys[0..nkeys) its kid names (several
 * keys allow rotation) and appends the plaintext to out. OP_EINVAL if msg
 * is shorter than OP_SEAL_OVERHEAD or its magic or version is unknown;
 * OP_ENOTFOUND if no key has its kid; OP_ECORRUPT if the ciphertext, tag,
 * nonce, node_id or seq differ from what was sealed; OP_ETOOBIG (past
 * out's cap), OP_ENOMEM. On failure out is as it was and no plaintext is
 * released. msg must not point into out. */
int op_sec_open(const struct op_seal_key *keys, size_t nkeys, const char *node_id, uint64_t seq,
                const void *msg, size_t n, struct op_buf *out);

/* The kid a sealed message names, for choosing or reporting a key.
 * OP_EINVAL as op_sec_open. */
int op_sec_seal_kid(const void *msg, size_t n, uint8_t kid[OP_KID_LEN]);

/* ---- end of signing and sealing ---- */

#endif
