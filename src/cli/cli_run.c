/*
 * `outpost run`: load the configuration (embedded defaults, then the file,
 * then flags), open the store, start the HTTP server, then wait for
 * signals: SIGHUP reloads the reloadable keys, SIGTERM/SIGINT drain and
 * exit 0.
 */
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli_int.h"
#include "outpost/core.h"
#include "outpost/err.h"
#include "outpost/http.h"
#include "outpost/rules.h"
#include "outpost/store.h"

#define DRAIN_WAIT_MS 30000

static void run_usage(FILE *out)
{
    fprintf(out,
            "usage: outpost run [options]\n\n"
            "  --config FILE      configuration file (see etc/outpost.conf)\n"
            "  --listen ADDR:PORT serve HTTP here (default 127.0.0.1:8080; port 0 = any free)\n"
            "  --data DIR         data directory (default ./outpost-data)\n"
            "  --set KEY=VALUE    set any configuration key, e.g. --set store.sync=normal\n"
            "  --print-config     print the effective configuration and exit\n"
            "  --help             this text\n");
}

void op_cli_report(const struct op_diag *d)
{
    if (d->file[0] && d->line > 0)
        fprintf(stderr, "outpost: %s:%ld: %s\n", d->file, d->line, d->msg);
    else if (d->file[0])
        fprintf(stderr, "outpost: %s: %s\n", d->file, d->msg);
    else
        fprintf(stderr, "outpost: %s\n", d->msg);
}

struct run_args {
    const char *config;
    bool print;
};

/* Applies defaults, the file, then flags in order; 0 or an exit status. */
static int load_config(int argc, char **argv, struct op_config *cfg, struct run_args *a)
{
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' }, { "listen", required_argument, NULL, 'l' },
        { "data", required_argument, NULL, 'd' },   { "set", required_argument, NULL, 's' },
        { "print-config", no_argument, NULL, 'p' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct op_diag d;
    op_config_defaults(cfg);
    /* First pass: find --config so that flags override the file. */
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'c')
            a->config = optarg;
        else if (c == 'p')
            a->print = true;
        else if (c == 'h') {
            run_usage(stdout);
            return -1;
        } else if (c == '?') {
            run_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "outpost run: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    op_diag_clear(&d);
    if (a->config && op_config_load_file(cfg, a->config, &d)) {
        op_cli_report(&d);
        return 2;
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        const char *key = NULL, *val = optarg;
        char kv[256];
        if (c == 'l')
            key = "listen";
        else if (c == 'd')
            key = "data_dir";
        else if (c == 's') {
            snprintf(kv, sizeof kv, "%s", optarg);
            char *eq = strchr(kv, '=');
            if (!eq) {
                fprintf(stderr, "outpost run: --set takes KEY=VALUE, not '%s'\n", optarg);
                return 2;
            }
            *eq = '\0';
            key = kv;
            val = eq + 1;
        }
        op_diag_clear(&d);
        if (key && op_config_set(cfg, key, val, &d)) {
            op_cli_report(&d);
            return 2;
        }
    }
    return 0;
}

static double gauge_rss(void *ctx)
{
    (void)ctx;
    return (double)op_proc_rss_bytes();
}

static double gauge_inflight(void *ctx)
{
    return (double)op_http_inflight(ctx);
}

/* [rule.*] sections of a reloaded file go to the rules runner; a bad one
 * leaves the running rules alone. */
static void reload_rules(const struct op_config *fresh, struct op_rules_runner *rules)
{
    struct op_rules_config_rule *cr = NULL;
    size_t n = 0;
    struct op_diag d;
    op_diag_clear(&d);
    if (op_rules_config_parse(fresh, &cr, &n, &d) != OP_OK) {
        OP_ERROR("core", "SIGHUP: %s:%ld: %s; keeping the running rules", d.file, d.line, d.msg);
        return;
    }
    if (op_rules_runner_reconfig(rules, cr, n) != OP_OK)
        OP_ERROR("core", "SIGHUP: out of memory; keeping the running rules");
    op_rules_config_free(cr, n);
}

static void reload(const char *path, struct op_config *live, struct op_rules_runner *rules)
{
    struct op_config fresh;
    struct op_diag d;
    op_diag_clear(&d);
    op_config_defaults(&fresh);
    if (!path) {
        OP_INFO("core", "SIGHUP: no configuration file to reload");
        return;
    }
    if (op_config_load_file(&fresh, path, &d)) {
        OP_ERROR("core", "SIGHUP: %s:%ld: %s; keeping the running configuration", d.file,
                 d.line, d.msg);
        return;
    }
    int n = op_config_apply_reloadable(live, &fresh);
    op_log_set_level((enum op_log_level)live->log_level);
    reload_rules(&fresh, rules);
    OP_INFO("core", "SIGHUP: reloaded %s (%d key%s changed)", path, n, n == 1 ? "" : "s");
}

/* One publish callback for the rules runner, feeding both alert sinks: the
 * webhook (when configured) and the SSE subscribers of the HTTP server.
 * The runner starts before the server (rules are loaded before readings
 * flow), so the server joins once it is up. */
struct alert_sinks {
    struct op_rules_webhook *webhook;
    _Atomic(struct op_http *) http;
};

static void publish_alerts(void *ctx, const struct op_store_alert *events, size_t n)
{
    struct alert_sinks *s = ctx;
    if (s->webhook)
        op_rules_webhook_publish(s->webhook, events, n);
    struct op_http *http = atomic_load(&s->http);
    if (http)
        op_http_alerts_publish(http, events, n);
}

static int webhook_start(const struct op_config *cfg, struct alert_sinks *s)
{
    if (!cfg->rules_webhook_url[0])
        return OP_OK;
    struct op_rules_webhook_opts o = {
        .url = cfg->rules_webhook_url,
        .timeout_ms = cfg->rules_webhook_timeout_ms,
        .queue_max = (size_t)cfg->rules_webhook_queue,
        .ca_file = cfg->rules_webhook_ca,
        .token = cfg->rules_webhook_token,
        .format = op_http_alert_json,
    };
    struct op_diag d;
    op_diag_clear(&d);
    snprintf(d.file, sizeof d.file, "%s", cfg->source);
    int rc = op_rules_webhook_start(&s->webhook, &o, &d);
    if (rc != OP_OK && !d.msg[0])
        op_diag_set(&d, "invalid_config", "cannot start the webhook sink: %s", op_err_str(rc));
    if (rc != OP_OK)
        op_cli_report(&d);
    return rc;
}

/* Stop taking work, let accepted requests finish, commit, close. */
/* Waits up to ms for every accepted request to be answered; returns how
 * many are still waiting. */
static int wait_answered(struct op_http *http, int ms)
{
    int64_t deadline = op_time_mono_ns() + (int64_t)ms * 1000000;
    while (op_http_pending(http) > 0 && op_time_mono_ns() < deadline)
        op_signals_wait(10);
    return op_http_pending(http);
}

static void drain(struct op_http *http, struct op_rules_runner *rules, struct op_store *store,
                  struct alert_sinks *sinks)
{
    /* Requests still sending their body were not accepted: they are cut
     * when the server stops. Accepted ones are answered first. */
    op_http_quiesce(http);
    int left = wait_answered(http, DRAIN_WAIT_MS);
    if (left > 0)
        OP_WARN("core", "%d accepted request(s) still waiting for the store after %d ms", left,
                DRAIN_WAIT_MS);
    /* No request can reach the store any more (quiesce made new ones 503),
     * so it can close: that commits and answers anything still queued. Then
     * the answers go out before the server stops. The rules runner stops
     * first (it writes to the store); what it has not evaluated yet is
     * evaluated at the next start, from its persisted cursor. */
    op_rules_runner_stop(rules);
    atomic_store(&sinks->http, NULL);
    op_store_close(store);
    wait_answered(http, 2000);
    op_http_stop(http);
    /* Last: it may still be retrying an event; a request in flight is
     * aborted within about a second. */
    op_rules_webhook_stop(sinks->webhook);
}

static int serve(struct op_config *cfg, const char *config_path,
                 const struct op_rules_runner_opts *ro, struct cli_uplinks *up);

int op_cli_run(int argc, char **argv)
{
    struct op_config cfg;
    struct run_args a = { NULL, false };
    int rc = load_config(argc, argv, &cfg, &a);
    if (rc)
        return rc < 0 ? 0 : rc;
    /* Rules of the config file are checked with the rest of it, before
     * anything starts. */
    struct op_rules_runner_opts ro = { 0 };
    struct op_rules_config_rule *crules = NULL;
    struct op_diag d;
    op_diag_clear(&d);
    if (op_rules_config_parse(&cfg, &crules, &ro.nconfig_rules, &d) != OP_OK) {
        op_cli_report(&d);
        return 2;
    }
    ro.config_rules = crules;
    struct cli_uplinks up;
    if ((rc = op_cli_uplinks_load(&up, &cfg)) == 0) {
        if (a.print)
            op_config_print(&cfg, stdout);
        else
            rc = serve(&cfg, a.config, &ro, &up);
        op_cli_uplinks_fini(&up);
    }
    op_rules_config_free(crules, ro.nconfig_rules);
    return rc;
}

/* Binds, drops root, opens the store, starts the rules and the server,
 * and runs until SIGTERM/SIGINT; SIGHUP reloads config_path. */
static int serve(struct op_config *cfg, const char *config_path,
                 const struct op_rules_runner_opts *ro, struct cli_uplinks *up)
{
    int rc;
    op_log_set_level((enum op_log_level)cfg->log_level);
    struct cli_security sec;
    if ((rc = op_cli_security_load(&sec, cfg)) != 0)
        return rc;
    op_signals_block();

    /* Bind (a low port needs root), check the bind rule on the address
     * actually bound, drop root, and only then open the store and serve:
     * no file is created and no request served as root. */
    int listen_fd = -1;
    if (op_http_listen(cfg, &listen_fd) != OP_OK) {
        op_cli_security_fini(&sec);
        return 1;
    }
    if ((rc = op_cli_security_check_bind(&sec, cfg, listen_fd)) != 0 ||
        (rc = op_cli_security_drop(cfg)) != 0) {
        close(listen_fd);
        op_cli_security_fini(&sec);
        return rc;
    }
    struct op_store_opts so = {
        .dir = cfg->data_dir,
        .sync_mode = cfg->sync_mode,
        .queue_max_bytes = (size_t)cfg->queue_max_bytes,
        .readers = (int)cfg->store_readers,
        .retention_age_ms = cfg->retention_age_ms,
        .retention_bytes = cfg->retention_bytes,
        .retention_interval_ms = cfg->retention_interval_ms,
    };
    op_cli_uplinks_store_opts(up, &so);
    struct op_store *store = NULL;
    if ((rc = op_store_open(&store, &so)) != OP_OK) {
        fprintf(stderr, "outpost: cannot open the store in %s: %s\n", cfg->data_dir,
                op_err_str(rc));
        close(listen_fd);
        op_cli_security_fini(&sec);
        return 1;
    }
    struct op_http *http = NULL;
    struct alert_sinks sinks = { .webhook = NULL, .http = NULL }; /* outlives the runner */
    struct op_rules_runner_opts ropts = *ro;
    ropts.publish = publish_alerts;
    ropts.publish_ctx = &sinks;
    /* Rules are loaded, and firing alerts seeded, before readings flow. */
    struct op_rules_runner *rules = NULL;
    if (webhook_start(cfg, &sinks) != OP_OK) {
        close(listen_fd);
        op_store_close(store);
        op_cli_security_fini(&sec);
        return 2;
    }
    if ((rc = op_rules_runner_start(&rules, store, &ropts)) != OP_OK) {
        close(listen_fd);
        op_store_close(store);
        op_rules_webhook_stop(sinks.webhook);
        op_cli_security_fini(&sec);
        fprintf(stderr, "outpost: cannot start the rules runner: %s\n", op_err_str(rc));
        return 1;
    }
    if ((rc = op_http_start(&http, cfg, store, &sec.http, listen_fd)) != OP_OK) {
        op_rules_runner_stop(rules);
        op_store_close(store);
        op_rules_webhook_stop(sinks.webhook);
        op_cli_security_fini(&sec);
        return 1;
    }
    atomic_store(&sinks.http, http);
    if (op_cli_uplinks_start(up, store) != 0) {
        op_http_quiesce(http);
        drain(http, rules, store, &sinks);
        op_cli_security_fini(&sec);
        return 1;
    }
    op_metrics_gauge("outpost_process_resident_memory_bytes", NULL,
                     "Resident memory of the process", gauge_rss, NULL);
    op_metrics_gauge("outpost_http_inflight_requests", NULL,
                     "Requests accepted and not yet answered", gauge_inflight, http);
    char host[128];
    uint16_t port;
    op_config_listen_split(cfg->listen, host, sizeof host, &port);
    OP_INFO("http", "listening on %s://%s:%u (data in %s, store.sync=%s%s%s)",
            op_http_tls(http) ? "https" : "http", host, op_http_port(http), cfg->data_dir,
            cfg->sync_mode == OP_SYNC_FULL ? "full" : "normal",
            sec.tls.client_ca_pem ? ", mutual TLS" : "",
            op_sec_auth_enabled(sec.auth) ? ", tokens required" : "");

    for (;;) {
        int sig = op_signals_wait(1000);
        if (sig == SIGHUP)
            reload(config_path, cfg, rules);
        else if (sig == SIGTERM || sig == SIGINT)
            break;
    }
    OP_INFO("core", "shutting down: answering %d accepted request(s)", op_http_pending(http));
    /* Uplinks stop first, at a batch boundary: what they had not sent
     * waits in the outbox for the next start. */
    op_cli_uplinks_stop(up);
    drain(http, rules, store, &sinks);
    op_cli_security_fini(&sec);
    op_metrics_reset();
    OP_INFO("core", "stopped cleanly");
    return 0;
}
