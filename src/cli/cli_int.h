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

#endif
