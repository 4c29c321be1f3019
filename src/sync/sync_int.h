/*
 * sync: private declarations shared by the files of src/sync/. The outbox
 * record format (sync_record.c), the batch wire format (sync_wire.c; both
 * specified in docs/internals/uplink.md), byte helpers, the HTTP transport
 * (sync_http.c) and the uplink thread (sync_uplink.c).
 */
#ifndef OUTPOST_SYNC_INT_H
#define OUTPOST_SYNC_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outpost/codec.h"
#include "outpost/err.h"
#include "outpost/store.h"
#include "outpost/sync.h"
#include "outpost/util.h"

#define SYNC_SUB "sync"

/* ---- bytes (sync_bytes.c) --------------------------------------------- */

int sync__put_uvarint(struct op_buf *b, uint64_t v);
int sync__put_u64(struct op_buf *b, uint64_t v); /* little-endian */
int sync__put_str8(struct op_buf *b, const char *s, size_t len); /* u8 length + bytes */

/* A bounds-checked reader over untrusted bytes; every get returns false
 * (and leaves the reader failed) once anything is short or malformed. */
struct sync_rd {
    const uint8_t *p, *end;
    bool bad;
};
bool sync__get_uvarint(struct sync_rd *r, uint64_t *v);
bool sync__get_u64(struct sync_rd *r, uint64_t *v);
bool sync__get_u8(struct sync_rd *r, uint8_t *v);
bool sync__get_bytes(struct sync_rd *r, size_t n, const uint8_t **p);

/* ---- outbox records (sync_record.c) ------------------------------------- */

/* A decoded record: reading i is names[sensor[i]], ts[i], val[i], with seq
 * seq_lo + i. Names point into the record's bytes. Arrays are the
 * decoder's, valid until its next decode. */
struct sync_rec {
    size_t n, nnames;
    const char **names;
    uint32_t *name_len;
    uint32_t *sensor;
    int64_t *ts;
    double *val;
};
struct sync_rec_dec;
int sync__rec_dec_create(struct sync_rec_dec **out);
void sync__rec_dec_destroy(struct sync_rec_dec *d);
/* OP_OK, OP_ECORRUPT for bytes that are not an n-reading record, OP_ENOMEM. */
int sync__rec_decode(struct sync_rec_dec *d, const void *data, size_t len, size_t n,
                     struct sync_rec *out);

/* ---- batches (sync_wire.c) ---------------------------------------------- */

/* Accumulates readings grouped per sensor, then writes the wire payload. */
struct sync_batch;
int sync__batch_create(struct sync_batch **out);
void sync__batch_destroy(struct sync_batch *b);
void sync__batch_reset(struct sync_batch *b);
int sync__batch_add(struct sync_batch *b, const char *name, uint32_t len, int64_t pos, int64_t ts,
                    double val);
size_t sync__batch_points(const struct sync_batch *b);
/* Raw bytes of the points (name + 16 per reading), for the "before
 * encoding" figure. */
size_t sync__batch_raw_bytes(const struct sync_batch *b);
/* The positions a batch settles on its receiver. A plain batch (ranged
 * false) settles everything up to last (first is the sender's cursor + 1);
 * with priorities a batch can run ahead of the cursor: ranged, it settles
 * everything up to floor (the sender's cursor) plus first..last, or with
 * sparse only its own readings' positions. docs/internals/uplink.md. */
struct sync_cover {
    int64_t first, last, floor;
    bool ranged, sparse;
};
/* Writes the whole message for batch seq: header, then the payload
 * (codec per sensor, zstd, sealed with key when non-NULL). */
int sync__batch_encode(struct sync_batch *b, const char *node, const char *uplink, uint64_t seq,
                       const struct sync_cover *cv, const struct op_seal_key *key,
                       struct op_buf *out);
/* The JSON form ({"node", "uplink", "seq", "first", "last"[, "floor",
 * "sparse"], "readings": [{"sensor", "ts", "value", "pos"}]}) for
 * receivers that want it. */
int sync__batch_encode_json(struct sync_batch *b, const char *node, const char *uplink,
                            uint64_t seq, const struct sync_cover *cv, struct op_buf *out);

/* ---- the HTTP transport (sync_http.c) ------------------------------------ */

struct sync_answer {
    int status;             /* the HTTP status; 0 when the transfer failed */
    int64_t retry_after_ms; /* Retry-After, or -1 */
    const char *answer;     /* the first KiB of the body (valid until the next post) */
    const char *error;      /* the transport error, when status is 0 */
};
struct sync_http;
int sync__http_create(struct sync_http **out, const struct op_uplink_cfg *u,
                      const _Atomic bool *stop);
void sync__http_destroy(struct sync_http *h);
/* Posts body once; the outcome is in *ans. OP_OK (the outcome says how it
 * went). */
int sync__http_post(struct sync_http *h, const void *body, size_t len, bool json,
                    struct sync_answer *ans);

/* ---- transports: HTTP (sync_http.c), MQTT (sync_mqtt.c) ---------------- */

/* One uplink's way of sending a batch, chosen by its url's scheme. send
 * fills *ans: a status in HTTP terms (MQTT: 200 for a PUBACK, 0 for a
 * transport failure), which the uplink maps to ack, retry or dead letter. */
struct sync_transport {
    const char *name;
    int (*create)(void **out, const struct op_uplink_cfg *u, const char *node,
                  const _Atomic bool *stop);
    void (*destroy)(void *t);
    int (*send)(void *t, const void *body, size_t len, bool json, struct sync_answer *ans);
};
/* The transport for url (http, https, mqtt, mqtts), or NULL. */
const struct sync_transport *sync__transport_for(const char *url);

int sync__mqtt_create(void **out, const struct op_uplink_cfg *u, const char *node,
                      const _Atomic bool *stop);
void sync__mqtt_destroy(void *t);
int sync__mqtt_send(void *t, const void *body, size_t len, bool json, struct sync_answer *ans);
/* OP_OK if url is mqtt[s]://host[:port]/topic. */
int sync__mqtt_url_check(const char *url);

#endif
