/*
 * sync_wire.c: the batch an uplink sends and a receiver takes
 * (docs/internals/uplink.md has the byte layout). Readings are grouped per
 * sensor, each group's positions (the sending node's seqs) written as a
 * first value and deltas, its (ts, value) pairs as one codec frame; the
 * whole payload then goes through zstd, and optionally through
 * ChaCha20-Poly1305 sealing bound to the node id and batch number. The
 * header (magic, flags, node, uplink, batch number) stays in clear so a
 * receiver can pick the key and deduplicate before it decodes anything.
 */
#include <stdio.h>
#include <string.h>
#include <zstd.h>

#include "outpost/err.h"
#include "outpost/sec.h"
#include "sync_int.h"

#define WIRE_MAGIC "OPB1"
#define WIRE_SEALED 1
#define WIRE_ZSTD 2
#define WIRE_RANGED 4 /* the payload ends with a trailer: floor, covers */
#define WIRE_ZSTD_LEVEL 3
/* The most a payload may inflate to: a bound on what a receiver allocates
 * for one batch, whatever its compressed size. */
#define WIRE_PAYLOAD_MAX ((size_t)256 << 20)

struct group {
    char *name;
    uint32_t len;
    size_t n, cap;
    int64_t *pos, *ts;
    double *val;
};

struct sync_batch {
    struct group *g;
    size_t ng, gcap;
    uint32_t *table; /* open addressing: group index + 1, 0 = empty */
    size_t tmask;
    size_t points, raw;
    struct op_codec_ctx *codec;
    ZSTD_CCtx *zc;
};

int sync__batch_create(struct sync_batch **out)
{
    struct sync_batch *b = op_calloc(1, sizeof(*b));
    if (!b)
        return OP_ENOMEM;
    b->tmask = 255;
    b->table = op_calloc(b->tmask + 1, sizeof(*b->table));
    b->zc = ZSTD_createCCtx();
    if (!b->table || !b->zc || op_codec_ctx_create(&b->codec) != OP_OK) {
        sync__batch_destroy(b);
        return OP_ENOMEM;
    }
    *out = b;
    return OP_OK;
}

static void groups_free(struct sync_batch *b)
{
    for (size_t i = 0; i < b->ng; i++) {
        op_free(b->g[i].name);
        op_free(b->g[i].pos);
        op_free(b->g[i].ts);
        op_free(b->g[i].val);
    }
    b->ng = 0;
}

void sync__batch_destroy(struct sync_batch *b)
{
    if (!b)
        return;
    groups_free(b);
    op_free(b->g);
    op_free(b->table);
    op_codec_ctx_destroy(b->codec);
    ZSTD_freeCCtx(b->zc);
    op_free(b);
}

void sync__batch_reset(struct sync_batch *b)
{
    groups_free(b);
    memset(b->table, 0, (b->tmask + 1) * sizeof(*b->table));
    b->points = b->raw = 0;
}

size_t sync__batch_points(const struct sync_batch *b)
{
    return b->points;
}

size_t sync__batch_raw_bytes(const struct sync_batch *b)
{
    return b->raw;
}

static int table_grow(struct sync_batch *b)
{
    size_t size = (b->tmask + 1) * 2;
    uint32_t *t = op_calloc(size, sizeof(*t));
    if (!t)
        return OP_ENOMEM;
    for (size_t i = 0; i < b->ng; i++) {
        size_t j = op_fnv1a32(b->g[i].name, b->g[i].len) & (size - 1);
        while (t[j])
            j = (j + 1) & (size - 1);
        t[j] = (uint32_t)i + 1;
    }
    op_free(b->table);
    b->table = t;
    b->tmask = size - 1;
    return OP_OK;
}

static int group_of(struct sync_batch *b, const char *name, uint32_t len, struct group **out)
{
    if ((b->ng + 1) * 2 > b->tmask + 1 && table_grow(b) != OP_OK)
        return OP_ENOMEM;
    size_t i = op_fnv1a32(name, len) & b->tmask;
    for (; b->table[i]; i = (i + 1) & b->tmask) {
        struct group *g = &b->g[b->table[i] - 1];
        if (g->len == len && memcmp(g->name, name, len) == 0) {
            *out = g;
            return OP_OK;
        }
    }
    if (b->ng == b->gcap) {
        size_t cap = b->gcap ? b->gcap * 2 : 64;
        struct group *g = op_realloc(b->g, cap * sizeof(*g));
        if (!g)
            return OP_ENOMEM;
        b->g = g;
        b->gcap = cap;
    }
    struct group *g = &b->g[b->ng];
    *g = (struct group){ .name = op_strndup(name, len), .len = len };
    if (!g->name)
        return OP_ENOMEM;
    b->table[i] = (uint32_t)++b->ng;
    *out = g;
    return OP_OK;
}

int sync__batch_add(struct sync_batch *b, const char *name, uint32_t len, int64_t pos, int64_t ts,
                    double val)
{
    struct group *g;
    int rc = group_of(b, name, len, &g);
    if (rc != OP_OK)
        return rc;
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 16;
        int64_t *p = op_realloc(g->pos, cap * sizeof(*p));
        if (p)
            g->pos = p;
        int64_t *t = p ? op_realloc(g->ts, cap * sizeof(*t)) : NULL;
        if (t)
            g->ts = t;
        double *v = t ? op_realloc(g->val, cap * sizeof(*v)) : NULL;
        if (!v)
            return OP_ENOMEM;
        g->val = v;
        g->cap = cap;
    }
    g->pos[g->n] = pos;
    g->ts[g->n] = ts;
    g->val[g->n] = val;
    g->n++;
    b->points++;
    b->raw += len + 16;
    return OP_OK;
}

/* The payload before zstd: positions, then per sensor name, count,
 * positions as deltas, and the codec frame. */
static int payload(struct sync_batch *b, const struct sync_cover *cv, struct op_buf *out)
{
    int rc = sync__put_u64(out, (uint64_t)cv->first);
    if (rc == OP_OK)
        rc = sync__put_u64(out, (uint64_t)cv->last);
    if (rc == OP_OK)
        rc = sync__put_uvarint(out, b->ng);
    uint8_t *frame = NULL;
    size_t fcap = 0;
    for (size_t i = 0; i < b->ng && rc == OP_OK; i++) {
        struct group *g = &b->g[i];
        rc = sync__put_uvarint(out, g->len);
        if (rc == OP_OK)
            rc = op_buf_append(out, g->name, g->len);
        if (rc == OP_OK)
            rc = sync__put_uvarint(out, g->n);
        for (size_t k = 0; k < g->n && rc == OP_OK; k++)
            rc = sync__put_uvarint(out, (uint64_t)(k ? g->pos[k] - g->pos[k - 1] : g->pos[0]));
        size_t need = op_codec_bound(g->n), flen = 0;
        if (rc == OP_OK && need > fcap) {
            uint8_t *f = op_realloc(frame, need);
            if (!f)
                rc = OP_ENOMEM;
            else
                frame = f, fcap = need;
        }
        if (rc == OP_OK)
            rc = op_codec_encode_ctx(b->codec, g->ts, g->val, g->n, OP_CODEC_FAST, frame, fcap,
                                     &flen, NULL);
        if (rc == OP_OK)
            rc = sync__put_uvarint(out, flen);
        if (rc == OP_OK)
            rc = op_buf_append(out, frame, flen);
    }
    op_free(frame);
    /* In the payload, so a seal covers it: a flipped flag cannot make a
     * receiver settle positions it never got. */
    if (rc == OP_OK && cv->ranged)
        rc = sync__put_u64(out, (uint64_t)cv->floor);
    if (rc == OP_OK && cv->ranged)
        rc = op_buf_append(out, &(uint8_t){ cv->sparse ? 1 : 0 }, 1);
    return rc;
}

static int header(struct op_buf *out, int flags, const char *node, const char *uplink,
                  uint64_t seq)
{
    uint8_t f = (uint8_t)flags;
    int rc = op_buf_append(out, WIRE_MAGIC, 4);
    if (rc == OP_OK)
        rc = op_buf_append(out, &f, 1);
    if (rc == OP_OK)
        rc = sync__put_str8(out, node, strlen(node));
    if (rc == OP_OK)
        rc = sync__put_str8(out, uplink, strlen(uplink));
    if (rc == OP_OK)
        rc = sync__put_u64(out, seq);
    return rc;
}

/* What a seal binds besides the batch number: "<node>/<uplink>" (a node
 * id has no '/'), so a sealed batch moved to another node or uplink does
 * not open. */
static void bound_id(char *buf, size_t cap, const char *node, const char *uplink)
{
    snprintf(buf, cap, "%s/%s", node, uplink);
}

int sync__batch_encode(struct sync_batch *b, const char *node, const char *uplink, uint64_t seq,
                       const struct sync_cover *cv, const struct op_seal_key *key,
                       struct op_buf *out)
{
    struct op_buf pl;
    op_buf_init(&pl, WIRE_PAYLOAD_MAX);
    int rc = payload(b, cv, &pl);
    size_t bound = ZSTD_compressBound(pl.len);
    char *zbuf = rc == OP_OK ? op_malloc(bound ? bound : 1) : NULL;
    if (rc == OP_OK && !zbuf)
        rc = OP_ENOMEM;
    size_t zlen = 0;
    if (rc == OP_OK) {
        zlen = ZSTD_compressCCtx(b->zc, zbuf, bound, pl.data, pl.len, WIRE_ZSTD_LEVEL);
        if (ZSTD_isError(zlen))
            rc = OP_ENOMEM;
    }
    if (rc == OP_OK)
        rc = header(out, (key ? WIRE_SEALED : 0) | WIRE_ZSTD | (cv->ranged ? WIRE_RANGED : 0),
                    node, uplink, seq);
    char id[OP_SYNC_NODE_MAX + OP_SYNC_NAME_MAX + 2];
    if (rc == OP_OK && key)
        bound_id(id, sizeof id, node, uplink);
    if (rc == OP_OK)
        rc = key ? op_sec_seal(key, id, seq, zbuf, zlen, out) : op_buf_append(out, zbuf, zlen);
    op_free(zbuf);
    op_buf_fini(&pl);
    return rc;
}

int sync__batch_encode_json(struct sync_batch *b, const char *node, const char *uplink,
                            uint64_t seq, const struct sync_cover *cv, struct op_buf *out)
{
    /* Sensor names are [A-Za-z0-9_.:/-] and node and uplink names are
     * checked likewise, so none needs escaping. */
    int rc = op_buf_appendf(out,
                            "{\"node\":\"%s\",\"uplink\":\"%s\",\"seq\":%llu,\"first\":%lld,"
                            "\"last\":%lld,",
                            node, uplink, (unsigned long long)seq, (long long)cv->first,
                            (long long)cv->last);
    if (rc == OP_OK && cv->ranged)
        rc = op_buf_appendf(out, "\"floor\":%lld,\"sparse\":%s,", (long long)cv->floor,
                            cv->sparse ? "true" : "false");
    if (rc == OP_OK)
        rc = op_buf_appends(out, "\"readings\":[");
    const char *sep = "";
    for (size_t i = 0; i < b->ng && rc == OP_OK; i++) {
        struct group *g = &b->g[i];
        for (size_t k = 0; k < g->n && rc == OP_OK; k++) {
            rc = op_buf_appendf(out, "%s{\"sensor\":\"%.*s\",\"ts\":%lld,\"value\":%.17g,"
                                     "\"pos\":%lld}",
                                sep, (int)g->len, g->name, (long long)g->ts[k], g->val[k],
                                (long long)g->pos[k]);
            sep = ",";
        }
    }
    return rc == OP_OK ? op_buf_appends(out, "]}") : rc;
}

/* ---- the receiver's side ------------------------------------------------- */

static bool valid_name(const uint8_t *p, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-' || c == '/'))
            return false;
    }
    return true;
}

static int bad(struct op_diag *d, const char *msg)
{
    op_diag_set(d, "invalid_batch", "%s", msg);
    return OP_ECORRUPT;
}

int op_sync_header_parse(const void *msg, size_t len, struct op_sync_header *h,
                         struct op_diag *d)
{
    struct sync_rd r = { msg, (const uint8_t *)msg + len, false };
    const uint8_t *magic, *node, *up;
    uint8_t nl, ul;
    uint64_t seq;
    if (!sync__get_bytes(&r, 4, &magic) || memcmp(magic, WIRE_MAGIC, 4) ||
        !sync__get_u8(&r, &h->flags))
        return bad(d, "not an outpost batch (magic OPB1 expected)");
    if (!sync__get_u8(&r, &nl) || nl == 0 || nl > OP_SYNC_NODE_MAX ||
        !sync__get_bytes(&r, nl, &node) || !valid_name(node, nl) || memchr(node, '/', nl) ||
        !sync__get_u8(&r, &ul) ||
        ul == 0 || ul > OP_SYNC_NAME_MAX || !sync__get_bytes(&r, ul, &up) ||
        !valid_name(up, ul) || !sync__get_u64(&r, &seq))
        return bad(d, "bad batch header (node, uplink or sequence)");
    if (h->flags & ~(WIRE_SEALED | WIRE_ZSTD | WIRE_RANGED))
        return bad(d, "unknown batch flags");
    memcpy(h->node, node, nl);
    h->node[nl] = '\0';
    memcpy(h->uplink, up, ul);
    h->uplink[ul] = '\0';
    h->seq = seq;
    h->body = r.p;
    h->body_len = (size_t)(r.end - r.p);
    return OP_OK;
}

void op_sync_batch_in_free(struct op_sync_batch_in *in)
{
    op_free(in->readings);
    op_free(in->positions);
    op_free(in->names);
    memset(in, 0, sizeof(*in));
}

/* Walks the payload twice: once to count and check, once to fill. */
static int parse_payload(const uint8_t *p, size_t len, const char *node, size_t max_points,
                         bool ranged, struct op_sync_batch_in *in, struct op_diag *d)
{
    struct sync_rd r = { p, p + len, false };
    uint64_t first, last, ng;
    if (!sync__get_u64(&r, &first) || !sync__get_u64(&r, &last) || !sync__get_uvarint(&r, &ng))
        return bad(d, "truncated batch payload");
    in->first_pos = (int64_t)first;
    in->last_pos = (int64_t)last;
    size_t nodelen = strlen(node), total = 0, namebytes = 0;
    struct sync_rd scan = r;
    for (uint64_t i = 0; i < ng; i++) {
        uint64_t nl, n, v, flen;
        const uint8_t *q;
        if (!sync__get_uvarint(&scan, &nl) || nl + nodelen + 1 > OP_STORE_SENSOR_MAX ||
            !sync__get_bytes(&scan, nl, &q) || !valid_name(q, nl) || !sync__get_uvarint(&scan, &n) ||
            n == 0 || n > max_points - total)
            return bad(d, "bad sensor group (name, or more readings than allowed)");
        for (uint64_t k = 0; k < n; k++)
            if (!sync__get_uvarint(&scan, &v))
                return bad(d, "truncated positions");
        if (!sync__get_uvarint(&scan, &flen) || !sync__get_bytes(&scan, flen, &q))
            return bad(d, "truncated codec frame");
        total += n;
        namebytes += nl + nodelen + 1;
    }
    if (ranged) {
        uint64_t floor;
        uint8_t covers;
        if (!sync__get_u64(&scan, &floor) || !sync__get_u8(&scan, &covers) || covers > 1 ||
            (int64_t)floor >= (int64_t)first)
            return bad(d, "bad trailer (floor below first, covers 0 or 1)");
        in->ranged = true;
        in->floor = (int64_t)floor;
        in->sparse = covers == 1;
    }
    if (scan.p != scan.end)
        return bad(d, "trailing bytes after the last sensor group");
    in->readings = op_malloc((total ? total : 1) * sizeof(*in->readings));
    in->positions = op_malloc((total ? total : 1) * sizeof(*in->positions));
    in->names = op_malloc(namebytes ? namebytes : 1);
    int64_t *ts = op_malloc((total ? total : 1) * sizeof(*ts));
    double *val = op_malloc((total ? total : 1) * sizeof(*val));
    int rc = in->readings && in->positions && in->names && ts && val ? OP_OK : OP_ENOMEM;
    char *np = in->names;
    size_t at = 0;
    for (uint64_t i = 0; i < ng && rc == OP_OK; i++) {
        uint64_t nl, n, v, flen;
        const uint8_t *q, *f;
        sync__get_uvarint(&r, &nl);
        sync__get_bytes(&r, nl, &q);
        sync__get_uvarint(&r, &n);
        char *name = np;
        memcpy(np, node, nodelen);
        np[nodelen] = '/';
        memcpy(np + nodelen + 1, q, nl);
        np += nodelen + 1 + nl;
        int64_t pos = 0;
        for (uint64_t k = 0; k < n; k++) {
            sync__get_uvarint(&r, &v);
            pos = k ? pos + (int64_t)v : (int64_t)v;
            in->positions[at + k] = pos;
        }
        sync__get_uvarint(&r, &flen);
        sync__get_bytes(&r, flen, &f);
        size_t got = 0;
        rc = op_codec_decode(f, flen, ts + at, val + at, n, &got);
        if (rc != OP_OK || got != n) {
            rc = rc == OP_ENOMEM ? OP_ENOMEM : bad(d, "a codec frame does not decode");
            break;
        }
        for (uint64_t k = 0; k < n; k++)
            in->readings[at + k] = (struct op_reading){ name, (uint32_t)(nodelen + 1 + nl),
                                                        ts[at + k], val[at + k] };
        at += n;
    }
    op_free(ts);
    op_free(val);
    in->n = at;
    return rc;
}

int op_sync_batch_decode(const struct op_sync_header *h, const struct op_seal_key *keys,
                         size_t nkeys, size_t max_points, struct op_sync_batch_in *in,
                         struct op_diag *d)
{
    memset(in, 0, sizeof(*in));
    struct op_buf opened;
    op_buf_init(&opened, WIRE_PAYLOAD_MAX);
    const uint8_t *body = h->body;
    size_t len = h->body_len;
    int rc = OP_OK;
    if (h->flags & WIRE_SEALED) {
        char bound[OP_SYNC_NODE_MAX + OP_SYNC_NAME_MAX + 2];
        bound_id(bound, sizeof bound, h->node, h->uplink);
        rc = nkeys ? op_sec_open(keys, nkeys, bound, h->seq, body, len, &opened) : OP_ENOTFOUND;
        if (rc == OP_ENOTFOUND) {
            op_diag_set(d, "unknown_key", "the batch is sealed with a key this node does not have");
        } else if (rc != OP_OK && rc != OP_ENOMEM) {
            op_diag_set(d, "invalid_seal", "the sealed batch does not open (tampered, or sealed"
                                           " for another node or sequence)");
            rc = OP_ECORRUPT;
        }
        body = (const uint8_t *)opened.data;
        len = opened.len;
    } else if (nkeys) {
        op_diag_set(d, "unsealed_batch", "this receiver takes sealed batches only");
        rc = OP_EINVAL;
    }
    char *plain = NULL;
    if (rc == OP_OK && (h->flags & WIRE_ZSTD)) {
        unsigned long long size = ZSTD_getFrameContentSize(body, len);
        if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ||
            size > WIRE_PAYLOAD_MAX) {
            rc = bad(d, "bad zstd frame, or a payload over 256 MiB");
        } else if (!(plain = op_malloc(size ? (size_t)size : 1))) {
            rc = OP_ENOMEM;
        } else {
            size_t got = ZSTD_decompress(plain, (size_t)size, body, len);
            if (ZSTD_isError(got) || got != size)
                rc = bad(d, "the zstd frame does not decompress");
            body = (const uint8_t *)plain;
            len = (size_t)size;
        }
    }
    if (rc == OP_OK)
        rc = parse_payload(body, len, h->node, max_points, (h->flags & WIRE_RANGED) != 0, in, d);
    op_free(plain);
    op_buf_fini(&opened);
    if (rc != OP_OK)
        op_sync_batch_in_free(in);
    return rc;
}
