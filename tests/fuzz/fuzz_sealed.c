/*
 * libFuzzer target for sealed messages (uplink batches a receiver opens):
 * op_sec_open over the input with two fixed keys (a rotation), for one
 * node id and sequence number. Most inputs stop at the header or the tag;
 * the seeds are real messages sealed with these keys, so mutations also
 * reach the tag check with a known kid. The input is also sealed as a
 * plaintext and must open to itself, and not open once any byte of the
 * message, the node id or the seq changes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "outpost/err.h"
#include "outpost/sec.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Test keys, published here and never used for anything else. */
static const char *const key_text[2] = {
    "outpost-seal-key v1\n"
    "kid bc98d3044d7d44c2\n"
    "key WznJD4y2VnJWWJq5CLSVnXMDv0XooZY5t+s6/BlEV8U=\n",
    "outpost-seal-key v1\n"
    "kid e027d3c24f37bde5\n"
    "key Nsq6bnv80UttgzwfsH7zJdrXPlZO7nY1fcRgsBoiZa0=\n",
};
#define NODE "node-1"
#define SEQ 42
#define OUT_MAX (1u << 20)

static struct op_seal_key keys[2];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    for (int i = 0; i < 2; i++)
        if (op_sec_seal_key_parse(&keys[i], key_text[i], strlen(key_text[i])) != OP_OK)
            abort();
    return 0;
}

/* Opens msg and checks the result against the documented codes. */
static int open_checked(const uint8_t *msg, size_t n, const char *node, uint64_t seq,
                        struct op_buf *out)
{
    op_buf_reset(out);
    int rc = op_sec_open(keys, 2, node, seq, msg, n, out);
    if (rc == OP_OK) {
        if (out->len != n - OP_SEAL_OVERHEAD)
            __builtin_trap();
    } else if ((rc != OP_EINVAL && rc != OP_ENOTFOUND && rc != OP_ECORRUPT) || out->len) {
        __builtin_trap();
    }
    /* op_sec_seal_kid reads the same header. */
    uint8_t kid[OP_KID_LEN];
    int krc = op_sec_seal_kid(msg, n, kid);
    if ((rc == OP_EINVAL) != (krc == OP_EINVAL))
        __builtin_trap();
    if ((rc == OP_OK || rc == OP_ECORRUPT) && memcmp(kid, keys[0].kid, OP_KID_LEN) &&
        memcmp(kid, keys[1].kid, OP_KID_LEN))
        __builtin_trap();
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct op_buf out, sealed;
    op_buf_init(&out, OUT_MAX);
    op_buf_init(&sealed, OUT_MAX + OP_SEAL_OVERHEAD);
    open_checked(data, size, NODE, SEQ, &out);

    /* Round trip with the input as the plaintext. */
    if (op_sec_seal(&keys[size & 1], NODE, SEQ, data, size, &sealed) == OP_OK) {
        uint8_t *m = (uint8_t *)sealed.data;
        size_t n = sealed.len;
        if (n != size + OP_SEAL_OVERHEAD || open_checked(m, n, NODE, SEQ, &out) != OP_OK ||
            out.len != size || (size && memcmp(out.data, data, size)))
            __builtin_trap();
        if (open_checked(m, n, NODE, SEQ + 1, &out) != OP_ECORRUPT ||
            open_checked(m, n, "node-2", SEQ, &out) != OP_ECORRUPT)
            __builtin_trap();
        /* Flip one bit, chosen by the input. */
        size_t pos = 0;
        for (size_t i = 0; i < size && i < 8; i++)
            pos = pos * 256 + data[i];
        pos %= n;
        m[pos] ^= (uint8_t)(1u << (size % 8));
        if (open_checked(m, n, NODE, SEQ, &out) == OP_OK)
            __builtin_trap();
    }
    op_buf_fini(&out);
    op_buf_fini(&sealed);
    return 0;
}
