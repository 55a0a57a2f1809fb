/* kcobra_arbiter.c - `kcobra arbiter` and `kcobra sim` (placeholder until
 * the component lands). */
#include <stdio.h>

#include "kcobra_common.h"

static int run_not_yet(const kcobra_command *command, int argc, char **argv)
{
    kcobra_invocation invocation;
    int status = kcobra_parse(command, NULL, 0, argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    kcobra_error("%s: not built yet", command->name);
    return KCOBRA_EXIT_FAILURE;
}

const kcobra_command kcobra_command_arbiter = {
    .name = "arbiter",
    .synopsis = "arbiter <serve|status|verdicts|reinstate|tree>",
    .summary = "the arbiters: QoS, reports, ranking, fusion, quarantine",
    .description = "",
    .run = run_not_yet,
    .positional_min = 0,
    .positional_max = 4,
};

const kcobra_command kcobra_command_sim = {
    .name = "sim",
    .synopsis = "sim --nodes N --corrupt F ...",
    .summary = "simulate a cloud with corrupt nodes and measure the arbiters",
    .description = "",
    .run = run_not_yet,
    .positional_min = 0,
    .positional_max = 0,
};
