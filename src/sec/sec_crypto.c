/*
 * The GnuTLS crypto primitives the rest of sec/ builds on: the system
 * CSPRNG, SHA-256 and a constant-time comparison. Kept apart from the TLS
 * code so that tokens and signing do not depend on sessions.
 */
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <nettle/memops.h>

#include "outpost/err.h"
#include "outpost/sec.h"

int op_sec_random(void *p, size_t n)
{
    /* GNUTLS_RND_KEY: the strongest level, for keys and tokens. */
    return gnutls_rnd(GNUTLS_RND_KEY, p, n) == 0 ? OP_OK : OP_EIO;
}

void op_sec_sha256(const void *p, size_t n, uint8_t out[OP_SHA256_LEN])
{
    /* Cannot fail for a built-in algorithm. */
    (void)gnutls_hash_fast(GNUTLS_DIG_SHA256, p, n, out);
}

bool op_sec_ct_equal(const void *a, const void *b, size_t n)
{
    return memeql_sec(a, b, n) != 0;
}
