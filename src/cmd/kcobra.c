/* kcobra - the KingCobra command-line tool: send typed requests, serve a
 * request type with any shell command, publish and subscribe raw NATS
 * messages, report problems, suggest, and read a server's statistics.
 *
 *   kcobra [common options] <command> [options] [arguments]
 *
 * This file is only the dispatcher: the command table, the top-level help
 * and --version. Each command group lives in its own kcobra_<group>.c and
 * parses its own flags with kcobra_parse (kcobra_common.c); common options
 * given before the command name are moved after it, so
 * "kcobra --server URL request echo hi" and "kcobra request echo hi --server
 * URL" mean the same. docs/kcobra.md is the manual. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kcobra_common.h"

enum {
    ARGUMENTS_MAX = 4096, /* argv is copied once to move common options */
};

/* One command a line: adding a command is a file and one row. */
// clang-format off
static const kcobra_command *const COMMANDS[] = {
    &kcobra_command_request,
    &kcobra_command_serve,
    &kcobra_command_pub,
    &kcobra_command_sub,
    &kcobra_command_problem,
    &kcobra_command_suggest,
    &kcobra_command_suggestions,
    &kcobra_command_stats,
    &kcobra_command_keeper,
    &kcobra_command_ingress,
    &kcobra_command_submit,
    &kcobra_command_reply,
    &kcobra_command_queue,
    &kcobra_command_wallet,
    &kcobra_command_mint,
    &kcobra_command_exchange,
    &kcobra_command_pay,
    &kcobra_command_coin,
    &kcobra_command_ledger,
    &kcobra_command_econ,
    &kcobra_command_arbiter,
    &kcobra_command_sim,
    &kcobra_command_services,
    &kcobra_command_eventnet,
};
// clang-format on
enum { COMMAND_COUNT = sizeof COMMANDS / sizeof COMMANDS[0] };

static const char EXAMPLES[] =
    "Examples:\n"
    "  kcobra serve upper --exec 'tr a-z A-Z'     serve type 'upper' with a command\n"
    "  kcobra request upper hello                 prints HELLO\n"
    "  echo hello | kcobra request upper -        the payload from stdin\n"
    "  kcobra sub 'kc.>' --count 10               watch KingCobra traffic\n"
    "  kcobra problem node-7 slow --text '3 s for a cache hit'\n"
    "  kcobra stats --monitor http://127.0.0.1:8222\n";

static void print_help(void)
{
    printf("Usage: kcobra [options] <command> [command options] [arguments]\n\n"
           "The KingCobra command-line tool.\n\nCommands:\n");
    for (int index = 0; index < COMMAND_COUNT; index++)
        printf("  %-13s %s\n", COMMANDS[index]->name, COMMANDS[index]->summary);
    printf("  %-13s %s\n", "help", "show help for a command: kcobra help <command>");
    printf("\nCommon options (every command takes them, before or after its name):\n");
    kcobra_print_common_options();
    printf("%-26s%s\n", "  --version", "print the version and exit");
    printf("\n%s\n", EXAMPLES);
    kcobra_print_exit_status();
    printf("\nRun 'kcobra <command> --help' for a command's options; see docs/kcobra.md.\n");
}

static const kcobra_command *command_find(const char *name)
{
    for (int index = 0; index < COMMAND_COUNT; index++)
        if (strcmp(COMMANDS[index]->name, name) == 0) return COMMANDS[index];
    return NULL;
}

static int unknown_command(const char *name)
{
    fprintf(stderr, "kcobra: unknown command '%s'; commands:", name);
    for (int index = 0; index < COMMAND_COUNT; index++)
        fprintf(stderr, " %s", COMMANDS[index]->name);
    fprintf(stderr, "\nTry 'kcobra --help'.\n");
    return KCOBRA_EXIT_USAGE;
}

/* kcobra help [command] */
static int run_help(int argc, char **argv, int command_index)
{
    if (command_index + 1 >= argc) {
        print_help();
        return KCOBRA_EXIT_OK;
    }
    const kcobra_command *command = command_find(argv[command_index + 1]);
    if (command == NULL) return unknown_command(argv[command_index + 1]);
    char *help_argv[] = {(char *)command->name, "--help", NULL};
    return command->run(command, 2, help_argv);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help();
        return KCOBRA_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        print_help();
        return KCOBRA_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("kcobra %s\n", KC_VERSION);
        return KCOBRA_EXIT_OK;
    }
    if (argc > ARGUMENTS_MAX) {
        fprintf(stderr, "kcobra: too many arguments (at most %d)\n", ARGUMENTS_MAX);
        return KCOBRA_EXIT_USAGE;
    }
    int global_count = kcobra_global_flags_span(1, argc, argv);
    if (global_count < 0) return KCOBRA_EXIT_USAGE;
    int command_index = 1 + global_count;
    if (command_index >= argc)
        return kcobra_usage_error(NULL, "no command given after the options");
    if (strcmp(argv[command_index], "help") == 0) return run_help(argc, argv, command_index);
    const kcobra_command *command = command_find(argv[command_index]);
    if (command == NULL) return unknown_command(argv[command_index]);
    /* The command's argv: its name, the common options that came before it,
     * then its own arguments. */
    char **command_argv = calloc((size_t)argc + 1, sizeof(char *));
    if (command_argv == NULL) {
        fprintf(stderr, "kcobra: out of memory\n");
        return KCOBRA_EXIT_FAILURE;
    }
    int command_argc = 0;
    command_argv[command_argc++] = argv[command_index];
    for (int index = 1; index < command_index; index++)
        command_argv[command_argc++] = argv[index];
    for (int index = command_index + 1; index < argc; index++)
        command_argv[command_argc++] = argv[index];
    int status = command->run(command, command_argc, command_argv);
    free(command_argv);
    return status;
}
