/* Private to the CLI: one entry point per subcommand. */
#ifndef OUTPOST_CLI_INT_H
#define OUTPOST_CLI_INT_H

/* Each returns the process exit status: 0 success, 1 runtime failure,
 * 2 usage or configuration error. argv[0] is the subcommand's name. */
int op_cli_main(int argc, char **argv);
int op_cli_run(int argc, char **argv);
int op_cli_codec(int argc, char **argv);
/* cli_key.c: `key gen`, `sign` and `verify`. */
int op_cli_key(int argc, char **argv);
int op_cli_sign(int argc, char **argv);
int op_cli_verify(int argc, char **argv);
int op_cli_token(int argc, char **argv);
/* Prints d as "outpost: FILE:LINE: message" (as much as d knows). */
struct op_diag;
void op_cli_report(const struct op_diag *d);
int op_cli_routes(int argc, char **argv);
int op_cli_tls(int argc, char **argv);

/* The security set-up of `outpost run` (cli_secure.c). */
#include "outpost/http.h"
#include "outpost/sec.h"
struct cli_security {
    struct op_auth *auth;
    struct op_tls_server tls;
    struct op_seal_key *seal_keys; /* receiver.seal_key, for POST /v1/uplink */
    size_t nseal_keys;
    struct op_http_sec http; /* what the server gets */
    bool insecure;           /* beyond loopback without TLS + credentials */
};
/* Loads credentials and TLS material; returns 0 or an exit status (errors
 * printed). */
int op_cli_security_load(struct cli_security *s, const struct op_config *cfg);
/* The bind rule on the bound listen socket fd: beyond loopback only with
 * TLS and credentials, or insecure_bind (then loudly). 0 or exit status 2. */
int op_cli_security_check_bind(struct cli_security *s, const struct op_config *cfg, int fd);
/* Drops root for cfg->user, if set; 0 or an exit status. */
int op_cli_security_drop(const struct op_config *cfg);
void op_cli_security_fini(struct cli_security *s);

/* ---- uplinks (cli_uplink.c) ---- */
struct op_uplink_cfg;
struct op_sync_encoder;
struct op_sync;
struct op_store_opts;
struct op_store;
struct cli_uplinks {
    struct op_uplink_cfg *cfg;
    size_t n;
    const char **names;
    struct op_sync_encoder *enc;
    struct op_sync *sync;
};
/* Validates the [uplink.NAME] sections; 0 or an exit status (printed). */
int op_cli_uplinks_load(struct cli_uplinks *u, const struct op_config *cfg);
/* Names the uplinks and the outbox encoder in the store's options. */
void op_cli_uplinks_store_opts(const struct cli_uplinks *u, struct op_store_opts *so);
int op_cli_uplinks_start(struct cli_uplinks *u, struct op_store *store);
/* Stops the uplink threads (before the store closes). */
void op_cli_uplinks_stop(struct cli_uplinks *u);
/* Frees the rest, the encoder included: after the store has closed. */
void op_cli_uplinks_fini(struct cli_uplinks *u);

#endif
