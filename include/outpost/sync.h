/*
 * sync: store-and-forward uplinks to the cloud tier, and the receiver role
 * (docs/uplink.md; formats in docs/internals/uplink.md). Every committed
 * reading goes into the store's outbox, encoded by op_sync_outbox_encode;
 * one thread per uplink reads it after the uplink's cursor, filters,
 * batches (grouped per sensor, codec + zstd, optionally sealed), sends with
 * retries, and moves the cursor only when the receiver acknowledged. A
 * receiver (another outpost, POST /v1/uplink) decodes, deduplicates by the
 * sender's positions and stores under "<node id>/<sensor>".
 */
#ifndef OUTPOST_SYNC_H
#define OUTPOST_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outpost/core.h"
#include "outpost/sec.h"
#include "outpost/store.h"

#define OP_SYNC_NAME_MAX 64 /* uplink names */
#define OP_SYNC_NODE_MAX 63 /* node ids in batches (63 + '/' + 128 = the store's cap) */

/* ---- the outbox encoder: runs on the store's writer thread ----------- */

struct op_sync_encoder;
int op_sync_encoder_create(struct op_sync_encoder **out);
void op_sync_encoder_destroy(struct op_sync_encoder *e);
/* An op_outbox_encode_fn; ctx is a struct op_sync_encoder. */
int op_sync_outbox_encode(void *ctx, const struct op_reading *r, size_t n, struct op_buf *out);

/* ---- configuration: [uplink.NAME] sections (sync_config.c) ----------- */

enum op_uplink_format { OP_UPLINK_BATCH = 0, OP_UPLINK_JSON };

/* What an uplink sends first while it is behind (docs/uplink.md,
 * "Priorities"): marked readings, the newest readings, the oldest. */
enum op_uplink_class { OP_PRIO_IMPORTANT = 0, OP_PRIO_LIVE, OP_PRIO_BACKLOG };
struct op_uplink_priority {
    uint8_t order[3]; /* classes, first served first; backlog always last */
    uint8_t n;
};

struct op_uplink_cfg {
    char name[OP_SYNC_NAME_MAX + 1];
    char url[512];
    char sensors[1024];       /* comma-separated exact names or globs; "" = all */
    bool important_only;      /* only readings a rule marked important */
    int64_t downsample_ms;    /* keep the first reading per sensor per step; 0 = all */
    int64_t batch_points;     /* readings per batch at most */
    int64_t batch_bytes;      /* raw bytes (name + 16 per reading) per batch at most */
    int64_t batch_age_ms;     /* how long a partial batch waits to fill */
    int64_t bandwidth;        /* bytes/s on the wire; 0 = unlimited */
    int format;                         /* enum op_uplink_format (an int for the config table) */
    struct op_uplink_priority priority; /* default: backlog only (position order) */
    char seal_key[512];       /* path of a sealing key; "" = not sealed */
    char token[256];          /* bearer token for the receiver; "" = none */
    char ca[512], cert[512], key[512]; /* TLS: CA file; client certificate and key (mTLS) */
    int64_t timeout_ms;       /* per request */
    int64_t backoff_min_ms, backoff_max_ms;
};

/* Validates every [uplink.NAME] section of cfg; *out (op_free) gets them
 * in file order. A bad one: OP_EINVAL with d naming the file, the line of
 * the offending key and the reason. */
int op_sync_config_parse(const struct op_config *cfg, struct op_uplink_cfg **out, size_t *n,
                         struct op_diag *d);

/* ---- the uplinks (sync_uplink.c) ------------------------------------- */

struct op_sync;
/* Starts one thread per uplink. The store must have been opened with the
 * same uplink names and op_sync_outbox_encode; it must outlive the sync. */
int op_sync_start(struct op_sync **out, struct op_store *store, const struct op_uplink_cfg *ups,
                  size_t n);
/* Stops at a batch boundary (a request in flight is abandoned, and resent
 * at the next start), joins, frees. NULL-safe. */
void op_sync_stop(struct op_sync *s);

/* ---- the receiver's side (sync_wire.c) ------------------------------- */

struct op_sync_header {
    uint8_t flags;
    char node[OP_SYNC_NODE_MAX + 1];
    char uplink[OP_SYNC_NAME_MAX + 1];
    uint64_t seq;
    const uint8_t *body; /* into the message */
    size_t body_len;
};
/* Reads the clear header of a batch. OP_ECORRUPT with d set if it is not
 * one. */
int op_sync_header_parse(const void *msg, size_t len, struct op_sync_header *h,
                         struct op_diag *d);

/* A decoded batch: readings (names "<node>/<sensor>", in names) and the
 * sender's position of each. */
struct op_sync_batch_in {
    size_t n;
    struct op_reading *readings;
    int64_t *positions;
    char *names;
    int64_t first_pos, last_pos;
    /* A ranged batch (priorities, docs/internals/uplink.md) settles
     * everything up to floor plus first..last, or (sparse) its positions. */
    bool ranged, sparse;
    int64_t floor;
};
/* Opens (with keys, when sealed; a receiver with keys refuses unsealed
 * batches), decompresses and decodes at most max_points readings.
 * OP_ECORRUPT / OP_EINVAL / OP_ENOTFOUND (no key) with d set, OP_ENOMEM. */
int op_sync_batch_decode(const struct op_sync_header *h, const struct op_seal_key *keys,
                         size_t nkeys, size_t max_points, struct op_sync_batch_in *in,
                         struct op_diag *d);
void op_sync_batch_in_free(struct op_sync_batch_in *in);

#endif
