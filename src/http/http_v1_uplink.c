/*
 * POST /v1/uplink: the receiver role (docs/uplink.md). Another node's
 * uplink posts a batch (application/x-outpost-batch); this node reads its
 * clear header, opens it when sealed (receiver.seal_key; with keys set,
 * unsealed batches are refused), decodes it, and appends its readings under
 * "<node id>/<sensor>" with one UPLINK_RECEIVE write, which keeps only the
 * positions beyond the last stored for that (node, uplink): a batch resent
 * after a lost answer is acknowledged again and adds nothing. The answer
 * goes out only after the commit, so a 200 means durable here.
 *
 * Statuses the sender acts on: 200 acknowledged; 400 a batch that will
 * never decode (it goes to the sender's dead letters); 403 a key problem an
 * operator must fix (the sender retries); 503/507 from the store (retried).
 */
#include <string.h>

#include "http_int.h"
#include "outpost/err.h"
#include "outpost/sync.h"

static void reply_received(struct http_req *r, int64_t accepted, int64_t duplicates, int64_t seq)
{
    op_counter_add(r->srv->received, (uint64_t)accepted);
    op_counter_add(r->srv->received_dup, (uint64_t)duplicates);
    struct op_buf b;
    op_buf_init(&b, 256);
    if (op_buf_appendf(&b, "{\"accepted\": %lld, \"duplicates\": %lld, \"batch\": %lld}",
                       (long long)accepted, (long long)duplicates, (long long)seq) == OP_OK)
        http__reply_json(r, 200, &b);
    else
        http__reply_errorf(r, 500, "internal", NULL, "cannot build the response");
    op_buf_fini(&b);
}

static void receive_done(struct op_store_write *w)
{
    struct http_req *r = w->ctx;
    if (w->rc)
        http__reply_store_error(r, w->rc);
    else
        reply_received(r, w->accepted, w->duplicates, w->batch_seq);
    http__resume(r);
}

static unsigned decode_status(int rc)
{
    switch (rc) {
    case OP_ENOTFOUND: /* no key for it */
    case OP_EINVAL:    /* unsealed, and this receiver wants sealed */
        return 403;
    case OP_ENOMEM:
        return 503;
    default:
        return 400;
    }
}

void http__h_uplink_post(struct http_req *r)
{
    struct op_http *h = r->srv;
    struct op_diag d;
    op_diag_clear(&d);
    struct op_sync_header hd;
    int rc = op_sync_header_parse(r->body.data, r->body.len, &hd, &d);
    /* With receiver.bind_node a sender may only send as itself: its token's
     * name (or certificate CN) is its node id. */
    if (rc == OP_OK && h->cfg->receiver_bind_node &&
        (!r->principal || strcmp(r->principal, hd.node) != 0)) {
        op_counter_add(h->received_bad, 1);
        http__reply_errorf(r, 403, "node_mismatch", NULL,
                           "this credential may not send as node '%s'", hd.node);
        return;
    }
    struct op_sync_batch_in *in = rc == OP_OK ? op_calloc(1, sizeof(*in)) : NULL;
    if (rc == OP_OK && !in)
        rc = OP_ENOMEM;
    if (rc == OP_OK)
        rc = op_sync_batch_decode(&hd, h->seal_keys, h->nseal_keys,
                                  (size_t)h->cfg->receiver_max_points, in, &d);
    if (rc != OP_OK) {
        op_free(in);
        op_counter_add(h->received_bad, 1);
        if (rc == OP_ENOMEM && !d.code[0])
            op_diag_set(&d, "overloaded", "out of memory decoding the batch");
        http__reply_error(r, decode_status(rc), &d);
        return;
    }
    r->batch_in = in;
    size_t nl = strlen(hd.node), ul = strlen(hd.uplink);
    if (!(r->owned[0] = op_malloc(nl + ul + 2))) {
        http__reply_store_error(r, OP_ENOMEM);
        return;
    }
    memcpy(r->owned[0], hd.node, nl + 1);
    memcpy(r->owned[0] + nl + 1, hd.uplink, ul + 1);
    if (in->n == 0) { /* nothing to store */
        reply_received(r, 0, 0, (int64_t)hd.seq);
        return;
    }
    r->write = (struct op_store_write){
        .op = OP_STORE_UPLINK_RECEIVE, .readings = in->readings, .n = in->n,
        .positions = in->positions, .peer_node = r->owned[0],
        .uplink_name = r->owned[0] + nl + 1, .first_pos = in->first_pos,
        .last_pos = in->last_pos, .batch_seq = (int64_t)hd.seq, .peer_ranged = in->ranged,
        .peer_sparse = in->sparse, .peer_floor = in->floor,
    };
    http__submit_write(r, receive_done);
}
