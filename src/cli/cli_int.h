/* Private to the CLI: one entry point per subcommand. */
#ifndef OUTPOST_CLI_INT_H
#define OUTPOST_CLI_INT_H

/* Each returns the process exit status: 0 success, 1 runtime failure,
 * 2 usage or configuration error. argv[0] is the subcommand's name. */
int op_cli_main(int argc, char **argv);
int op_cli_run(int argc, char **argv);
int op_cli_codec(int argc, char **argv);

#endif
