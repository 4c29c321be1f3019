/*
 * cli_uplink.c: `outpost run`'s uplinks. The [uplink.NAME] sections are
 * validated with the rest of the config; their names and the outbox
 * encoder go into the store's options (so every commit also fills the
 * outbox); the threads start once the store is open and stop before it
 * closes; the encoder, which the store's writer uses, is freed last.
 */
#include <stdio.h>

#include "cli_int.h"
#include "outpost/err.h"
#include "outpost/sync.h"

int op_cli_uplinks_load(struct cli_uplinks *u, const struct op_config *cfg)
{
    struct op_diag d;
    op_diag_clear(&d);
    *u = (struct cli_uplinks){ 0 };
    if (op_sync_config_parse(cfg, &u->cfg, &u->n, &d) != OP_OK) {
        op_cli_report(&d);
        return 2;
    }
    if (u->n == 0)
        return 0;
    u->names = op_calloc(u->n, sizeof(*u->names));
    if (!u->names || op_sync_encoder_create(&u->enc) != OP_OK) {
        fprintf(stderr, "outpost: out of memory\n");
        op_cli_uplinks_fini(u);
        return 1;
    }
    for (size_t i = 0; i < u->n; i++)
        u->names[i] = u->cfg[i].name;
    return 0;
}

void op_cli_uplinks_store_opts(const struct cli_uplinks *u, struct op_store_opts *so)
{
    so->uplinks = u->names;
    so->nuplinks = u->n;
    so->outbox_encode = u->n ? op_sync_outbox_encode : NULL;
    so->outbox_ctx = u->enc;
}

int op_cli_uplinks_start(struct cli_uplinks *u, struct op_store *store)
{
    int rc = op_sync_start(&u->sync, store, u->cfg, u->n);
    if (rc != OP_OK)
        fprintf(stderr, "outpost: cannot start the uplinks: %s\n", op_err_str(rc));
    return rc == OP_OK ? 0 : 1;
}

void op_cli_uplinks_stop(struct cli_uplinks *u)
{
    op_sync_stop(u->sync);
    u->sync = NULL;
}

void op_cli_uplinks_fini(struct cli_uplinks *u)
{
    op_cli_uplinks_stop(u);
    op_sync_encoder_destroy(u->enc);
    op_free(u->names);
    op_free(u->cfg);
    *u = (struct cli_uplinks){ 0 };
}
