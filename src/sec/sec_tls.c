/*
 * TLS through GnuTLS, the library libmicrohttpd itself uses: the server's
 * material (checked here, handed to the HTTP library as PEM), mutual TLS
 * enforced in the handshake, the verified peer's name for the router, and
 * a client context for outgoing connections with verification on by
 * default. This is the only file that includes <gnutls/gnutls.h> for TLS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <string.h>

#include "outpost/err.h"
#include "outpost/sec.h"

#define PEM_MAX ((size_t)1 << 20)

static const char prio_13[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3";

/* A client certificate must be one issued for client authentication (or
 * for any purpose): another node's server certificate from the same CA is
 * not a client credential. */
static gnutls_typed_vdata_st client_purpose[] = {
    { GNUTLS_DT_KEY_PURPOSE_OID, (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT, 0 },
};
static const char prio_12[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";

static int tls_error(struct op_diag *d, const char *file, const char *what, int grc)
{
    snprintf(d->file, sizeof d->file, "%s", file ? file : "");
    op_diag_set(d, "tls", "%s: %s", what, grc ? gnutls_strerror(grc) : "invalid");
    return OP_EINVAL;
}

static int read_pem(const char *path, const char *key, char **out, struct op_diag *d)
{
    size_t len;
    int rc = op_file_read_all(path, PEM_MAX, out, &len);
    if (rc) {
        snprintf(d->file, sizeof d->file, "%s", path);
        snprintf(d->field, sizeof d->field, "%s", key);
        op_diag_set(d, "invalid_config", "%s: cannot read %s (%s)", key, path,
                    rc == OP_EIO ? strerror(errno) : op_err_str(rc));
    }
    return rc;
}

static gnutls_datum_t datum(const char *s)
{
    return (gnutls_datum_t){ (unsigned char *)s, (unsigned)strlen(s) };
}

/* Loads the material into throw-away credentials: the same checks the
 * HTTP library will make, but with an error that names the file. */
static int check_material(const struct op_tls_server *t, const struct op_config *cfg,
                          struct op_diag *d)
{
    gnutls_certificate_credentials_t cred;
    if (gnutls_certificate_allocate_credentials(&cred))
        return OP_ENOMEM;
    gnutls_datum_t c = datum(t->cert_pem), k = datum(t->key_pem);
    int rc = OP_OK;
    int g = gnutls_certificate_set_x509_key_mem2(cred, &c, &k, GNUTLS_X509_FMT_PEM, NULL, 0);
    if (g < 0)
        rc = tls_error(d, cfg->tls_cert, "tls.cert/tls.key", g);
    if (!rc && t->client_ca_pem) {
        gnutls_datum_t ca = datum(t->client_ca_pem);
        g = gnutls_certificate_set_x509_trust_mem(cred, &ca, GNUTLS_X509_FMT_PEM);
        if (g <= 0)
            rc = tls_error(d, cfg->tls_client_ca, "tls.client_ca holds no CA certificate", g);
    }
    gnutls_certificate_free_credentials(cred);
    return rc;
}

int op_sec_tls_server_load(struct op_tls_server *t, const struct op_config *cfg,
                           struct op_diag *d)
{
    memset(t, 0, sizeof *t);
    if (!cfg->tls_cert[0] || !cfg->tls_key[0]) {
        snprintf(d->file, sizeof d->file, "%s", cfg->source);
        snprintf(d->field, sizeof d->field, "%s", cfg->tls_cert[0] ? "tls.key" : "tls.cert");
        op_diag_set(d, "invalid_config", "tls.cert and tls.key must be set together");
        return OP_EINVAL;
    }
    int rc = read_pem(cfg->tls_cert, "tls.cert", &t->cert_pem, d);
    if (!rc)
        rc = read_pem(cfg->tls_key, "tls.key", &t->key_pem, d);
    if (!rc && cfg->tls_client_ca[0])
        rc = read_pem(cfg->tls_client_ca, "tls.client_ca", &t->client_ca_pem, d);
    if (!rc)
        rc = check_material(t, cfg, d);
    t->priorities = cfg->tls_min_version == OP_TLS_MIN_12 ? prio_12 : prio_13;
    if (rc)
        op_sec_tls_server_fini(t);
    return rc;
}

void op_sec_tls_server_fini(struct op_tls_server *t)
{
    if (t->key_pem)
        explicit_bzero(t->key_pem, strlen(t->key_pem));
    op_free(t->cert_pem);
    op_free(t->key_pem);
    op_free(t->client_ca_pem);
    memset(t, 0, sizeof *t);
}

void op_sec_tls_session_require_client_cert(void *session)
{
    gnutls_session_t s = session;
    /* libmicrohttpd only *requests* a certificate when given a trust
     * list; requiring it and verifying it against that list (no host
     * name: clients have none to check) makes the handshake itself fail
     * for a missing, expired, self-signed or foreign certificate. */
    gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
    gnutls_session_set_verify_cert2(s, client_purpose, 1, 0);
}

int op_sec_tls_peer_cn(void *session, char *cn, size_t cnlen)
{
    gnutls_session_t s = session;
    unsigned status = 1;
    /* Checked again here so that a certificate reaches the router only
     * when verified, whatever the handshake was configured to do. */
    if (gnutls_certificate_verify_peers(s, client_purpose, 1, &status) < 0 || status != 0)
        return OP_ENOTFOUND;
    unsigned n = 0;
    const gnutls_datum_t *der = gnutls_certificate_get_peers(s, &n);
    if (!der || !n)
        return OP_ENOTFOUND;
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt))
        return OP_ENOMEM;
    int rc = OP_ENOTFOUND;
    size_t len = cnlen;
    if (!gnutls_x509_crt_import(crt, &der[0], GNUTLS_X509_FMT_DER) &&
        !gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &len))
        rc = OP_OK;
    gnutls_x509_crt_deinit(crt);
    return rc;
}

/* ---- client ------------------------------------------------------------ */

struct op_tls_client {
    gnutls_certificate_credentials_t cred;
    bool verify;
    const char *priorities;
};

struct op_tls_conn {
    gnutls_session_t s;
    /* What the server's certificate is checked against; kept for the
     * session's life because GnuTLS may refer to it during the handshake. */
    char name[256];
    gnutls_typed_vdata_st verify[2];
};

int op_sec_tls_client_create(struct op_tls_client **out, const struct op_tls_client_opts *o,
                             struct op_diag *d)
{
    struct op_tls_client *c = op_calloc(1, sizeof *c);
    if (!c)
        return OP_ENOMEM;
    c->verify = !o->no_verify;
    c->priorities = o->priorities ? o->priorities : prio_12;
    if (gnutls_certificate_allocate_credentials(&c->cred)) {
        op_free(c);
        return OP_ENOMEM;
    }
    int g = o->ca_file ? gnutls_certificate_set_x509_trust_file(c->cred, o->ca_file,
                                                                 GNUTLS_X509_FMT_PEM)
                       : gnutls_certificate_set_x509_system_trust(c->cred);
    int rc = OP_OK;
    if (g <= 0 && c->verify)
        rc = tls_error(d, o->ca_file, "no trusted CA certificate could be loaded", g);
    if (!rc && (o->cert_file || o->key_file)) {
        g = o->cert_file && o->key_file
                ? gnutls_certificate_set_x509_key_file(c->cred, o->cert_file, o->key_file,
                                                       GNUTLS_X509_FMT_PEM)
                : GNUTLS_E_INVALID_REQUEST;
        if (g < 0)
            rc = tls_error(d, o->cert_file, "client certificate and key", g);
    }
    if (rc) {
        op_sec_tls_client_destroy(c);
        return rc;
    }
    *out = c;
    return OP_OK;
}

void op_sec_tls_client_destroy(struct op_tls_client *c)
{
    if (!c)
        return;
    gnutls_certificate_free_credentials(c->cred);
    op_free(c);
}

static bool is_ip_literal(const char *name)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

static void handshake_error(struct op_diag *d, gnutls_session_t s, int g, const char *name)
{
    if (g == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
        gnutls_datum_t why = { NULL, 0 };
        unsigned status = gnutls_session_get_verify_cert_status(s);
        gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &why, 0);
        op_diag_set(d, "tls_verify", "server certificate rejected for '%s': %s",
                    name ? name : "", why.data ? (const char *)why.data : "unknown reason");
        gnutls_free(why.data);
        return;
    }
    op_diag_set(d, "tls_handshake", "TLS handshake failed: %s", gnutls_strerror(g));
}

int op_sec_tls_connect(struct op_tls_conn **out, struct op_tls_client *c, int fd,
                       const char *server_name, int timeout_ms, struct op_diag *d)
{
    if (c->verify && (!server_name || !server_name[0] ||
                      strlen(server_name) >= sizeof(((struct op_tls_conn *)0)->name))) {
        op_diag_set(d, "tls", "a server name is needed to verify the server's certificate");
        return OP_EINVAL;
    }
    struct op_tls_conn *t = op_calloc(1, sizeof *t);
    if (!t)
        return OP_ENOMEM;
    int g = gnutls_init(&t->s, GNUTLS_CLIENT);
    if (g) {
        op_free(t);
        return OP_ENOMEM;
    }
    g = gnutls_priority_set_direct(t->s, c->priorities, NULL);
    if (!g)
        g = gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, c->cred);
    /* SNI carries names only; an address is still checked below. */
    if (!g && server_name && !is_ip_literal(server_name))
        g = gnutls_server_name_set(t->s, GNUTLS_NAME_DNS, server_name, strlen(server_name));
    if (g) {
        op_diag_set(d, "tls", "cannot set up the TLS session: %s", gnutls_strerror(g));
        op_sec_tls_conn_close(t);
        return OP_EIO;
    }
    if (c->verify) {
        snprintf(t->name, sizeof t->name, "%s", server_name);
        t->verify[0] = (gnutls_typed_vdata_st){ GNUTLS_DT_DNS_HOSTNAME,
                                                (unsigned char *)t->name, 0 };
        t->verify[1] = (gnutls_typed_vdata_st){ GNUTLS_DT_KEY_PURPOSE_OID,
                                                (unsigned char *)GNUTLS_KP_TLS_WWW_SERVER, 0 };
        gnutls_session_set_verify_cert2(t->s, t->verify, 2, 0);
    }
    gnutls_transport_set_int(t->s, fd);
    gnutls_handshake_set_timeout(t->s, timeout_ms > 0 ? (unsigned)timeout_ms : 0);
    do {
        g = gnutls_handshake(t->s);
    } while (g < 0 && !gnutls_error_is_fatal(g));
    if (g < 0) {
        handshake_error(d, t->s, g, server_name);
        op_sec_tls_conn_close(t);
        return OP_EIO;
    }
    *out = t;
    return OP_OK;
}

long op_sec_tls_write(struct op_tls_conn *t, const void *p, size_t n)
{
    ssize_t r;
    do {
        r = gnutls_record_send(t->s, p, n);
    } while (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED);
    return r < 0 ? OP_EIO : (long)r;
}

long op_sec_tls_read(struct op_tls_conn *t, void *p, size_t n)
{
    ssize_t r;
    do {
        r = gnutls_record_recv(t->s, p, n);
    } while (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED);
    /* A peer that closes without close_notify ends the stream too: HTTP
     * framing, not TLS, tells a truncated answer. */
    if (r == GNUTLS_E_PREMATURE_TERMINATION)
        return 0;
    return r < 0 ? OP_EIO : (long)r;
}

void op_sec_tls_conn_close(struct op_tls_conn *t)
{
    if (!t)
        return;
    gnutls_bye(t->s, GNUTLS_SHUT_WR);
    gnutls_deinit(t->s);
    op_free(t);
}
