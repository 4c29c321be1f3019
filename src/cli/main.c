/* outpost: parse argv, dispatch to a subcommand, exit with its status. */
#include "cli_int.h"

int main(int argc, char **argv)
{
    return op_cli_main(argc, argv);
}
