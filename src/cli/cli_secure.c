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

/* The receiver's sealing keys (receiver.seal_key lines), read as root
 * like the other secrets. */
static int seal_keys_load(struct cli_security *s, const struct op_config *cfg, struct op_diag *d)
{
    const struct op_config_list *l = &cfg->receiver_seal_keys;
    if (l->n == 0)
        return OP_OK;
    if (!(s->seal_keys = op_calloc((size_t)l->n, sizeof(*s->seal_keys))))
        return OP_ENOMEM;
    for (int i = 0; i < l->n; i++) {
        int rc = op_sec_seal_key_load(&s->seal_keys[i], l->items[i].v);
        if (rc != OP_OK) {
            snprintf(d->file, sizeof d->file, "%s", cfg->source);
            d->line = l->items[i].line > 0 ? l->items[i].line : -1;
            op_diag_set(d, "invalid_config", "receiver.seal_key: cannot load %.200s: %s",
                        l->items[i].v, op_err_str(rc));
            return rc;
        }
        s->nseal_keys++;
    }
    return OP_OK;
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
    if (seal_keys_load(s, cfg, &d) != OP_OK) {
        op_cli_report(&d);
        op_cli_security_fini(s);
        return 2;
    }
    s->http.auth = s->auth;
    s->http.tls = s->tls.cert_pem ? &s->tls : NULL;
    s->http.seal_keys = s->seal_keys;
    s->http.nseal_keys = s->nseal_keys;
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
    for (size_t i = 0; i < s->nseal_keys; i++)
        op_sec_seal_key_wipe(&s->seal_keys[i]);
    op_free(s->seal_keys);
    s->seal_keys = NULL;
    s->nseal_keys = 0;
}
