/*
 * `outpost tls probe HOST:PORT`: one HTTPS GET through the TLS client
 * context the uplink uses (server certificate and host name verified,
 * optional client certificate). It checks a node's TLS set-up from the
 * client's side and is how the tests exercise the client context.
 */
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli_int.h"
#include "outpost/err.h"
#include "outpost/sec.h"

#define PROBE_TIMEOUT_MS 10000

static void tls_usage(FILE *out)
{
    fprintf(out, "usage: outpost tls probe HOST:PORT [--ca FILE] [--cert FILE --key FILE]\n"
                 "                [--servername NAME] [--path /healthz] [--token TOKEN]\n\n"
                 "The token may also come from $OUTPOST_TOKEN (kept out of `ps`).\n"
                 "Connects with TLS, verifies the server's certificate against --ca (default:\n"
                 "the system's trust store) and its name against --servername (default: HOST),\n"
                 "GETs --path and prints the status line. Exit 0 on an HTTP answer, 1 on a\n"
                 "connection or TLS failure.\n");
}

static int dial(const char *host, const char *port)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
    if (getaddrinfo(host, port, &hints, &res) || !res)
        return -1;
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen)) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

/* Sends the request and prints the first line of the answer. */
static int exchange(struct op_tls_conn *t, const char *host, const char *path, const char *token)
{
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n%s%s%s\r\n", path,
                     host, token ? "Authorization: Bearer " : "", token ? token : "",
                     token ? "\r\n" : "");
    if (n <= 0 || (size_t)n >= sizeof req || op_sec_tls_write(t, req, (size_t)n) != n)
        return 1;
    char resp[512];
    size_t got = 0;
    long r;
    while (got < sizeof resp - 1 && (r = op_sec_tls_read(t, resp + got, sizeof resp - 1 - got)) > 0)
        got += (size_t)r;
    resp[got] = '\0';
    char *eol = strstr(resp, "\r\n");
    if (!eol || strncmp(resp, "HTTP/", 5)) {
        /* With TLS 1.3 a server refuses a client certificate after the
         * client's side of the handshake is done: it shows up here. */
        fprintf(stderr, "outpost tls: the server closed the connection without an HTTP answer "
                        "(does it require a client certificate?)\n");
        return 1;
    }
    *eol = '\0';
    printf("%s\n", resp);
    return 0;
}

int op_cli_tls(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "ca", required_argument, NULL, 'a' },   { "cert", required_argument, NULL, 'c' },
        { "key", required_argument, NULL, 'k' },  { "servername", required_argument, NULL, 's' },
        { "path", required_argument, NULL, 'p' }, { "token", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },       { NULL, 0, NULL, 0 },
    };
    if (argc < 3 || strcmp(argv[1], "probe")) {
        bool help = argc >= 2 && !strcmp(argv[1], "--help");
        tls_usage(help ? stdout : stderr);
        return help ? 0 : 2;
    }
    /* A server that hangs up must be an error message, not SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    struct op_tls_client_opts o = { 0 };
    /* The token may come from the environment, out of `ps` and history. */
    const char *servername = NULL, *path = "/healthz", *token = getenv("OUTPOST_TOKEN");
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'a': o.ca_file = optarg; break;
        case 'c': o.cert_file = optarg; break;
        case 'k': o.key_file = optarg; break;
        case 's': servername = optarg; break;
        case 'p': path = optarg; break;
        case 't': token = optarg; break;
        default:
            tls_usage(c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    char host[128];
    uint16_t port;
    if (optind != argc - 1 || op_config_listen_split(argv[optind], host, sizeof host, &port)) {
        tls_usage(stderr);
        return 2;
    }
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", port);
    struct op_diag d;
    op_diag_clear(&d);
    struct op_tls_client *cl = NULL;
    if (op_sec_tls_client_create(&cl, &o, &d)) {
        op_cli_report(&d);
        return 1;
    }
    int rc = 1, fd = dial(host, portstr);
    struct op_tls_conn *t = NULL;
    if (fd < 0)
        fprintf(stderr, "outpost tls: cannot connect to %s\n", argv[optind]);
    else if (op_sec_tls_connect(&t, cl, fd, servername ? servername : host, PROBE_TIMEOUT_MS, &d))
        op_cli_report(&d);
    else
        rc = exchange(t, host, path, token);
    op_sec_tls_conn_close(t);
    if (fd >= 0)
        close(fd);
    op_sec_tls_client_destroy(cl);
    return rc;
}
