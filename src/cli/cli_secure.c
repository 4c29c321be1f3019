/*
 * The security half of `outpost run`: load the credentials and the TLS
 * material named in the config, refuse to serve beyond loopback without
 * TLS and credentials (unless insecure_bind says so, loudly), and drop
 * root once the port is bound, before the store is opened or a request
 * is served.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli_int.h"
#include "outpost/err.h"
#include "outpost/store.h"

static double gauge_insecure(void *ctx)
{
    return *(const bool *)ctx ? 1 : 0;
}

int op_cli_security_load(struct cli_security *s, const struct op_config *cfg)
{
    struct op_diag d;
    memset(s, 0, sizeof *s);
    op_diag_clear(&d);
    if (op_sec_auth_create(&s->auth, cfg, &d)) {
        op_cli_report(&d);
        return 2;
    }
    if (cfg->auth_cert_roles.n > 0 && !cfg->tls_client_ca[0]) {
        /* Without a client CA no certificate is ever verified: the lines
         * could never match, which is a configuration mistake. */
        snprintf(d.file, sizeof d.file, "%s", cfg->source);
        d.line = cfg->auth_cert_roles.items[0].line > 0 ? cfg->auth_cert_roles.items[0].line : -1;
        op_diag_set(&d, "invalid_config", "auth.cert_role needs tls.client_ca (mutual TLS)");
        op_cli_report(&d);
        op_cli_security_fini(s);
        return 2;
    }
    if ((cfg->tls_cert[0] || cfg->tls_key[0] || cfg->tls_client_ca[0]) &&
        op_sec_tls_server_load(&s->tls, cfg, &d)) {
        op_cli_report(&d);
        op_cli_security_fini(s);
        return 2;
    }
    s->http.auth = s->auth;
    s->http.tls = s->tls.cert_pem ? &s->tls : NULL;
    return 0;
}

int op_cli_security_check_bind(struct cli_security *s, const struct op_config *cfg, int fd)
{
    bool authenticated = op_sec_auth_enabled(s->auth) || s->tls.client_ca_pem;
    /* The address actually bound, not a second resolution of the name. */
    s->insecure = !op_http_listen_is_loopback(fd) && !(s->http.tls && authenticated);
    op_metrics_gauge("outpost_security_insecure_bind", NULL,
                     "1 when serving beyond loopback without TLS and credentials "
                     "(insecure_bind = true)",
                     gauge_insecure, &s->insecure);
    if (s->insecure && !cfg->insecure_bind) {
        fprintf(stderr,
                "outpost: refusing to serve %s without TLS and credentials: anyone on the "
                "network could read and write this node. Set tls.cert/tls.key and auth.token "
                "(or tls.client_ca), listen on 127.0.0.1, or set insecure_bind = true.\n",
                cfg->listen);
        return 2;
    }
    if (s->insecure)
        OP_WARN("sec", "INSECURE: serving %s without %s%s%s (insecure_bind = true); anyone who "
                "can reach this address can read and write this node",
                cfg->listen, s->http.tls ? "" : "TLS",
                !s->http.tls && !authenticated ? " and " : "",
                authenticated ? "" : "credentials");
    return 0;
}

int op_cli_security_drop(const struct op_config *cfg)
{
    if (!cfg->user[0])
        return 0;
    if (geteuid() != 0) {
        OP_WARN("sec", "user = %s ignored: not started as root", cfg->user);
        return 0;
    }
    struct op_diag d;
    op_diag_clear(&d);
    /* Made while root (its parent may be root's), handed over below, and
     * the store then opens it as the user. */
    if (op_store_dir_create(cfg->data_dir))
        return 1;
    int rc = op_proc_drop_privileges(cfg->user, cfg->data_dir, op_store_file_names, &d);
    if (rc) {
        op_cli_report(&d);
        return rc == OP_ENOTFOUND ? 2 : 1; /* an unknown user is a config error */
    }
    OP_INFO("sec", "running as user %s", cfg->user);
    return 0;
}

void op_cli_security_fini(struct cli_security *s)
{
    op_sec_auth_destroy(s->auth);
    s->auth = NULL;
    op_sec_tls_server_fini(&s->tls);
}
