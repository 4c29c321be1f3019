/*
 * The command table of the outpost CLI: subcommand name -> handler, plus
 * --help and version. Adding a subcommand is adding a row.
 */
#include <stdio.h>
#include <string.h>

#include "cli_int.h"

#ifndef OUTPOST_VERSION
#define OUTPOST_VERSION "0.0.0"
#endif

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
};

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("outpost %s\n", OUTPOST_VERSION);
    return 0;
}

static const struct command commands[] = {
    { "run", op_cli_run, "run the node (see `outpost run --help`)" },
    { "token", op_cli_token, "create an API token for a role (`outpost token create --role R`)" },
    { "routes", op_cli_routes, "list the HTTP routes and the role each one needs" },
    { "tls", op_cli_tls, "check a node's TLS from the client side (`outpost tls probe`)" },
#ifdef OUTPOST_HAVE_CODEC_CLI
    { "codec", op_cli_codec, "encode, decode or measure a time-series CSV with the block codec" },
#endif
    { "key", op_cli_key, "make a signing or sealing key (`outpost key gen [--seal]`)" },
    { "sign", op_cli_sign, "write a detached Ed25519 signature for a file (FILE.sig)" },
    { "verify", op_cli_verify, "check a file's detached signature against a public key" },
    { "version", cmd_version, "print the version" },
};

static void usage(FILE *out)
{
    fprintf(out, "usage: outpost <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\n`outpost <command> --help` for a command's options.\n");
}

int op_cli_main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(name, "--version"))
        name = "version";
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(name, commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "outpost: unknown command '%s'\n", name);
    usage(stderr);
    return 2;
}
