/*
 * `outpost token create`: a new random token, printed once, and the config
 * line that holds only its hash. `outpost routes`: the route table with
 * the role each route needs.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli_int.h"
#include "outpost/err.h"
#include "outpost/http.h"
#include "outpost/sec.h"

static void token_usage(FILE *out)
{
    fprintf(out, "usage: outpost token create --role ingest|read|admin|node [--name NAME]\n\n"
                 "Prints a new token (once: only its hash is kept) and the line to add to the\n"
                 "[auth] section of the configuration.\n");
}

int op_cli_token(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "role", required_argument, NULL, 'r' },
        { "name", required_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    if (argc < 2 || strcmp(argv[1], "create")) {
        token_usage(argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
        return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
    }
    const char *role_s = NULL, *name = NULL;
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'r')
            role_s = optarg;
        else if (c == 'n')
            name = optarg;
        else {
            token_usage(c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    enum op_role role;
    if (!role_s || op_sec_role_parse(role_s, strlen(role_s), &role) || role == OP_ROLE_PUBLIC) {
        fprintf(stderr, "outpost token: --role must be ingest, read, admin or node\n");
        return 2;
    }
    char token[OP_TOKEN_LEN + 1], line[OP_CONFIG_ITEM_MAX];
    int rc = op_sec_token_generate(role, name, token, sizeof token, line, sizeof line);
    if (rc == OP_EINVAL) {
        fprintf(stderr, "outpost token: --name must be 1-64 of [A-Za-z0-9_.-]\n");
        return 2;
    }
    if (rc) {
        fprintf(stderr, "outpost token: cannot make a token: %s\n", op_err_str(rc));
        return 1;
    }
    printf("%s\n"
           "# The token above is shown once; outpost keeps only its hash. Give it to the\n"
           "# client (Authorization: Bearer <token>) and add this line to the [auth]\n"
           "# section of the configuration:\n"
           "token = %s\n",
           token, line);
    explicit_bzero(token, sizeof token);
    return 0;
}

int op_cli_routes(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "usage: outpost routes\n\nPrints METHOD PATTERN ROLE for every route.\n");
        return 2;
    }
    op_http_routes_print(stdout);
    return 0;
}
