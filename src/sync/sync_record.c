/*
 * sync_record.c: the outbox record, the form in which every committed
 * reading waits for the uplinks (docs/internals/uplink.md). The store's
 * writer calls op_sync_outbox_encode inside the group's transaction, so it
 * must be cheap: a name dictionary built with a small hash table, one
 * sensor index per reading, and the (ts, value) pairs in commit order as
 * one codec frame in fast mode (no entropy stage: a batch gets zstd later,
 * across records). About 3-6 bytes a reading against 30-45 in the tables.
 *
 *   u8 version (1) | uvarint nnames | nnames x (uvarint len, bytes)
 *   | n x uvarint sensor index | codec frame of the n (ts, value) pairs
 */
#include <string.h>

#include "outpost/err.h"
#include "sync_int.h"

#define REC_VERSION 1

struct op_sync_encoder {
    struct op_codec_ctx *codec;
    int64_t *ts;
    double *val;
    uint8_t *frame;
    size_t cap, frame_cap;
    /* names of the record: open addressing, reset per record */
    struct slot {
        const char *name;
        uint32_t len, idx;
        uint32_t gen;
    } *table;
    size_t tmask;
    uint32_t gen, nnames;
};

int op_sync_encoder_create(struct op_sync_encoder **out)
{
    struct op_sync_encoder *e = op_calloc(1, sizeof(*e));
    if (!e)
        return OP_ENOMEM;
    e->tmask = 1023;
    e->table = op_calloc(e->tmask + 1, sizeof(*e->table));
    if (!e->table || op_codec_ctx_create(&e->codec) != OP_OK) {
        op_sync_encoder_destroy(e);
        return OP_ENOMEM;
    }
    *out = e;
    return OP_OK;
}

void op_sync_encoder_destroy(struct op_sync_encoder *e)
{
    if (!e)
        return;
    op_codec_ctx_destroy(e->codec);
    op_free(e->ts);
    op_free(e->val);
    op_free(e->frame);
    op_free(e->table);
    op_free(e);
}

static int reserve(struct op_sync_encoder *e, size_t n)
{
    if (n > e->cap) {
        int64_t *ts = op_realloc(e->ts, n * sizeof(*ts));
        if (ts)
            e->ts = ts;
        double *val = ts ? op_realloc(e->val, n * sizeof(*val)) : NULL;
        if (!ts || !val)
            return OP_ENOMEM;
        e->val = val;
        e->cap = n;
    }
    size_t fb = op_codec_bound(n);
    if (fb > e->frame_cap) {
        uint8_t *f = op_realloc(e->frame, fb);
        if (!f)
            return OP_ENOMEM;
        e->frame = f;
        e->frame_cap = fb;
    }
    return OP_OK;
}

/* Doubles the name table, keeping this record's names (it stays at most
 * half full, sized by the names seen rather than the readings). */
static int table_grow(struct op_sync_encoder *e)
{
    size_t size = (e->tmask + 1) * 2;
    struct slot *t = op_calloc(size, sizeof(*t));
    if (!t)
        return OP_ENOMEM;
    for (size_t i = 0; i <= e->tmask; i++) {
        struct slot *s = &e->table[i];
        if (s->gen != e->gen)
            continue;
        size_t j = op_fnv1a32(s->name, s->len) & (size - 1);
        while (t[j].gen == e->gen)
            j = (j + 1) & (size - 1);
        t[j] = *s;
    }
    op_free(e->table);
    e->table = t;
    e->tmask = size - 1;
    return OP_OK;
}

/* The record-local index of a name, adding it (and writing it to out). */
static int name_index(struct op_sync_encoder *e, const char *p, uint32_t len, struct op_buf *names,
                      uint32_t *idx)
{
    if ((size_t)(e->nnames + 1) * 2 > e->tmask + 1 && table_grow(e) != OP_OK)
        return OP_ENOMEM;
    for (size_t i = op_fnv1a32(p, len) & e->tmask;; i = (i + 1) & e->tmask) {
        struct slot *s = &e->table[i];
        if (s->gen != e->gen) {
            *s = (struct slot){ p, len, e->nnames, e->gen };
            *idx = e->nnames++;
            int rc = sync__put_uvarint(names, len);
            return rc == OP_OK ? op_buf_append(names, p, len) : rc;
        }
        if (s->len == len && memcmp(s->name, p, len) == 0) {
            *idx = s->idx;
            return OP_OK;
        }
    }
}

int op_sync_outbox_encode(void *ctx, const struct op_reading *r, size_t n, struct op_buf *out)
{
    struct op_sync_encoder *e = ctx;
    int rc = reserve(e, n);
    if (rc != OP_OK)
        return rc;
    if (++e->gen == 0) { /* wrapped: clear the generations */
        memset(e->table, 0, (e->tmask + 1) * sizeof(*e->table));
        e->gen = 1;
    }
    e->nnames = 0;
    struct op_buf names, idx;
    op_buf_init(&names, (size_t)64 << 20);
    op_buf_init(&idx, (size_t)64 << 20);
    uint32_t k = 0;
    for (size_t i = 0; i < n && rc == OP_OK; i++) {
        /* Runs of one sensor skip the hash. */
        if (i == 0 || r[i].sensor_len != r[i - 1].sensor_len ||
            memcmp(r[i].sensor, r[i - 1].sensor, r[i].sensor_len) != 0)
            rc = name_index(e, r[i].sensor, r[i].sensor_len, &names, &k);
        if (rc == OP_OK)
            rc = sync__put_uvarint(&idx, k);
        e->ts[i] = r[i].ts;
        e->val[i] = r[i].value;
    }
    size_t flen = 0;
    if (rc == OP_OK)
        rc = op_codec_encode_ctx(e->codec, e->ts, e->val, n, OP_CODEC_FAST, e->frame,
                                 e->frame_cap, &flen, NULL);
    uint8_t version = REC_VERSION;
    if (rc == OP_OK)
        rc = op_buf_append(out, &version, 1);
    if (rc == OP_OK)
        rc = sync__put_uvarint(out, e->nnames);
    if (rc == OP_OK)
        rc = op_buf_append(out, names.data, names.len);
    if (rc == OP_OK)
        rc = op_buf_append(out, idx.data, idx.len);
    if (rc == OP_OK)
        rc = op_buf_append(out, e->frame, flen);
    op_buf_fini(&names);
    op_buf_fini(&idx);
    return rc;
}

/* ---- decoding ------------------------------------------------------------ */

struct sync_rec_dec {
    struct op_codec_ctx *codec;
    size_t cap, names_cap;
    const char **names;
    uint32_t *name_len;
    uint32_t *sensor;
    int64_t *ts;
    double *val;
};

int sync__rec_dec_create(struct sync_rec_dec **out)
{
    struct sync_rec_dec *d = op_calloc(1, sizeof(*d));
    if (!d || op_codec_ctx_create(&d->codec) != OP_OK) {
        op_free(d);
        return OP_ENOMEM;
    }
    *out = d;
    return OP_OK;
}

void sync__rec_dec_destroy(struct sync_rec_dec *d)
{
    if (!d)
        return;
    op_codec_ctx_destroy(d->codec);
    op_free(d->names);
    op_free(d->name_len);
    op_free(d->sensor);
    op_free(d->ts);
    op_free(d->val);
    op_free(d);
}

static int dec_reserve(struct sync_rec_dec *d, size_t n, size_t nnames)
{
    if (n > d->cap) {
        void *a = op_realloc(d->sensor, n * sizeof(*d->sensor));
        if (a)
            d->sensor = a;
        void *b = a ? op_realloc(d->ts, n * sizeof(*d->ts)) : NULL;
        if (b)
            d->ts = b;
        void *c = b ? op_realloc(d->val, n * sizeof(*d->val)) : NULL;
        if (!c)
            return OP_ENOMEM;
        d->val = c;
        d->cap = n;
    }
    if (nnames > d->names_cap) {
        void *a = op_realloc(d->names, nnames * sizeof(*d->names));
        if (a)
            d->names = a;
        void *b = a ? op_realloc(d->name_len, nnames * sizeof(*d->name_len)) : NULL;
        if (!b)
            return OP_ENOMEM;
        d->name_len = b;
        d->names_cap = nnames;
    }
    return OP_OK;
}

int sync__rec_decode(struct sync_rec_dec *d, const void *data, size_t len, size_t n,
                     struct sync_rec *out)
{
    struct sync_rd r = { data, (const uint8_t *)data + len, false };
    uint8_t version;
    uint64_t nnames;
    if (!sync__get_u8(&r, &version) || version != REC_VERSION || !sync__get_uvarint(&r, &nnames) ||
        nnames > n || n > OP_CODEC_MAX_POINTS)
        return OP_ECORRUPT;
    if (dec_reserve(d, n, nnames ? nnames : 1) != OP_OK)
        return OP_ENOMEM;
    for (size_t i = 0; i < nnames; i++) {
        uint64_t l;
        const uint8_t *p;
        if (!sync__get_uvarint(&r, &l) || l == 0 || l > OP_STORE_SENSOR_MAX ||
            !sync__get_bytes(&r, l, &p))
            return OP_ECORRUPT;
        d->names[i] = (const char *)p;
        d->name_len[i] = (uint32_t)l;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t k;
        if (!sync__get_uvarint(&r, &k) || k >= nnames)
            return OP_ECORRUPT;
        d->sensor[i] = (uint32_t)k;
    }
    size_t got = 0;
    int rc = op_codec_decode_ctx(d->codec, r.p, (size_t)(r.end - r.p), d->ts, d->val, n, &got);
    if (rc != OP_OK || got != n)
        return rc == OP_ENOMEM ? OP_ENOMEM : OP_ECORRUPT;
    *out = (struct sync_rec){ n, nnames, d->names, d->name_len, d->sensor, d->ts, d->val };
    return OP_OK;
}
