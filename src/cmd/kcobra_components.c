/* kcobra_components.c - `kcobra keeper serve` and `kcobra ingress serve`:
 * kcobrad's built-in suggestion keeper and seed-format ingress, run as
 * processes of their own against any NATS-protocol server (a nats-server
 * cluster, or a kcobrad started with them off). The same library code runs
 * in both places (src/keeper, src/ingress); only the connection differs:
 * here it is the common flags' (--server, credentials, TLS), and it
 * reconnects for ever, so the component outlives a server restart.
 *
 * Both run until SIGINT or SIGTERM, then drain (bounded) and exit 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "ingress/config.h"
#include "ingress/ingress.h"
#include "kcobra_common.h"
#include "kcobra_settings.h"
#include "keeper/config.h"
#include "keeper/suggestions.h"

enum {
    COMPONENT_ERROR_BYTES = 512,
    DRAIN_MS = 1000, /* a component's drain at stop */
};

#define DATA_DIR_DEFAULT "data" /* as kcobrad's data_dir */

/* "serve" is the only action, so the command reads naturally and other
 * actions can come later. */
static int expect_serve(const kcobra_command *command, const kcobra_invocation *invocation)
{
    if (strcmp(invocation->positional[0], "serve") == 0) return KCOBRA_EXIT_OK;
    return kcobra_usage_error(command, "unknown action '%s' (the action is 'serve')",
                              invocation->positional[0]);
}

/* The flags of `kcobra <part> serve` come from the part's key table: parses
 * them into settings and checks the action. */
static int serve_flags(const kcobra_command *command, int argc, char **argv,
                       const kci_config_key *keys, size_t key_count, void *settings,
                       kcobra_invocation *invocation)
{
    int status =
        kcobra_settings_parse(command, argc, argv, keys, key_count, settings, NULL, 0, invocation);
    if (status != KCOBRA_EXIT_OK || invocation->help) return status;
    return expect_serve(command, invocation);
}

/* A component serving until a stop signal logs at info level to stderr. */
static void serve_begin(sigset_t *stop_signals)
{
    kci_log_configure(KCI_LOG_INFO, true);
    kcobra_stop_signals_block(stop_signals);
}

/* ---- keeper ---------------------------------------------------------------- */

static const char KEEPER_DESCRIPTION[] =
    "Runs the suggestion keeper on its own: it answers kc.suggest (appends the\n"
    "suggestion to a JSON-lines file, fsync before the acknowledgement) and\n"
    "kc.suggest.list, exactly as the keeper built into kcobrad does. Use it when\n"
    "the fabric is a nats-server cluster (docs/cluster.md). One keeper per file\n"
    "(the file is locked); several keepers with different files share the work.\n"
    "Runs until SIGINT or SIGTERM.\n\n"
    "Example:\n"
    "  kcobra keeper serve --server nats://10.0.0.5:4222 --file /var/lib/kc/suggestions.jsonl\n";

/* The flags come from the keeper's key table (src/keeper/config.c). */
static int keeper_serve(const kcobra_command *command, int argc, char **argv,
                        kci_keeper_config *settings)
{
    size_t key_count = 0;
    const kci_config_key *keys = kci_keeper_config_keys(&key_count);
    kcobra_invocation invocation;
    int status = serve_flags(command, argc, argv, keys, key_count, settings, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    char error[COMPONENT_ERROR_BYTES] = "";
    if (kci_keeper_config_check(settings, error, sizeof error) != KC_OK)
        return kcobra_usage_error(command, "%s", error);
    sigset_t stop_signals;
    serve_begin(&stop_signals);
    natsConnection *connection = NULL;
    status = kcobra_nats_connect_long_running(&connection, &invocation.common);
    if (status != KCOBRA_EXIT_OK) return status;
    kci_suggestions *keeper = NULL;
    kci_suggestions_config config = {
        .file_path = settings->file,
        .node = invocation.common.node != NULL ? invocation.common.node : "kcobra-keeper",
        .operators = settings->operators.items,
        .operator_count = settings->operators.count,
    };
    if (kci_suggestions_start(&keeper, connection, &config, error, sizeof error) != KC_OK) {
        kcobra_error("keeper: %s", error);
        kcobra_nats_finish(connection);
        return KCOBRA_EXIT_FAILURE;
    }
    int signal_number = kcobra_stop_signal_wait(&stop_signals);
    kci_info("keeper: %s: stopping", strsignal(signal_number));
    kci_suggestions_stop(keeper, DRAIN_MS);
    kcobra_nats_finish(connection);
    return KCOBRA_EXIT_OK;
}

static int run_keeper(const kcobra_command *command, int argc, char **argv)
{
    kci_keeper_config settings;
    if (kci_keeper_config_init(&settings, DATA_DIR_DEFAULT) != KC_OK) {
        kcobra_error("out of memory");
        return KCOBRA_EXIT_FAILURE;
    }
    int status = keeper_serve(command, argc, argv, &settings);
    kci_keeper_config_free(&settings);
    return status;
}

const kcobra_command kcobra_command_keeper = {
    .name = "keeper",
    .synopsis = "keeper serve [--file PATH]",
    .summary = "run the suggestion keeper as a process of its own",
    .description = KEEPER_DESCRIPTION,
    .run = run_keeper,
    .positional_min = 1,
    .positional_max = 1,
};

/* ---- ingress --------------------------------------------------------------- */

static const char INGRESS_DESCRIPTION[] =
    "Runs the seed-format ingress on its own: a TCP line listener that turns each\n"
    "REQUEST#<client>#<timestamp>#<payload> line into a request of one type and\n"
    "writes back REPLY#<client>#<timestamp>#<reply> (or ERROR#<reason>), exactly\n"
    "as the ingress built into kcobrad does (docs/ingress.md). Runs until SIGINT\n"
    "or SIGTERM.\n\n"
    "Example:\n"
    "  kcobra ingress serve --listen 127.0.0.1:4223 --type echo\n"
    "  printf 'REQUEST#alice#1#hello\\n' | nc 127.0.0.1 4223\n";

/* The flags come from the ingress's key table (src/ingress/config.c). */
static int ingress_serve(const kcobra_command *command, int argc, char **argv,
                         kci_ingress_settings *settings)
{
    size_t key_count = 0;
    const kci_config_key *keys = kci_ingress_settings_keys(&key_count);
    kcobra_invocation invocation;
    int status = serve_flags(command, argc, argv, keys, key_count, settings, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    char error[COMPONENT_ERROR_BYTES] = "";
    if (kci_ingress_settings_check(settings, error, sizeof error) != KC_OK)
        return kcobra_usage_error(command, "%s", error);
    sigset_t stop_signals;
    serve_begin(&stop_signals);
    kc_client *client = NULL;
    status = kcobra_client_open(&client, &invocation.common);
    if (status != KCOBRA_EXIT_OK) return status;
    kci_ingress_config config = kci_ingress_settings_runtime(settings);
    kci_ingress *ingress = NULL;
    if (kci_ingress_start(&ingress, client, &config, error, sizeof error) != KC_OK) {
        kcobra_error("ingress: %s", error);
        kcobra_client_close(client);
        return KCOBRA_EXIT_FAILURE;
    }
    int signal_number = kcobra_stop_signal_wait(&stop_signals);
    kci_info("ingress: %s: stopping", strsignal(signal_number));
    kci_ingress_stop(ingress, DRAIN_MS);
    kcobra_client_close(client);
    return KCOBRA_EXIT_OK;
}

static int run_ingress(const kcobra_command *command, int argc, char **argv)
{
    kci_ingress_settings settings;
    if (kci_ingress_settings_init(&settings) != KC_OK) {
        kcobra_error("out of memory");
        return KCOBRA_EXIT_FAILURE;
    }
    int status = ingress_serve(command, argc, argv, &settings);
    kci_ingress_settings_free(&settings);
    return status;
}

const kcobra_command kcobra_command_ingress = {
    .name = "ingress",
    .synopsis = "ingress serve [--listen HOST:PORT] [--type TYPE] [--request-timeout D]",
    .summary = "run the seed-format ingress as a process of its own",
    .description = INGRESS_DESCRIPTION,
    .run = run_ingress,
    .positional_min = 1,
    .positional_max = 1,
};
