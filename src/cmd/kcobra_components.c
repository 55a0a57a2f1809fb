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
#include "ingress/ingress.h"
#include "kcobra_common.h"
#include "keeper/suggestions.h"

enum {
    COMPONENT_ERROR_BYTES = 512,
    DRAIN_MS = 1000,             /* a component's drain at stop */
    INGRESS_PORT_DEFAULT = 4223, /* as kcobrad's ingress block */
    INGRESS_TIMEOUT_MS_DEFAULT = 5000,
    INGRESS_HOST_BYTES_MAX = 256,
};

#define KEEPER_FILE_DEFAULT "data/suggestions.jsonl"
#define INGRESS_TYPE_DEFAULT "default"

/* "serve" is the only action, so the command reads naturally and other
 * actions can come later. */
static int expect_serve(const kcobra_command *command, const kcobra_invocation *invocation)
{
    if (strcmp(invocation->positional[0], "serve") == 0) return KCOBRA_EXIT_OK;
    return kcobra_usage_error(command, "unknown action '%s' (the action is 'serve')",
                              invocation->positional[0]);
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

static int run_keeper(const kcobra_command *command, int argc, char **argv)
{
    const char *file = KEEPER_FILE_DEFAULT;
    const kcobra_flag flags[] = {
        {"file", "PATH", KCOBRA_FLAG_STRING, &file,
         "the JSON-lines file (default " KEEPER_FILE_DEFAULT ")"},
    };
    kcobra_invocation invocation;
    int status = kcobra_parse(command, flags, KCOBRA_ARRAY_COUNT(flags), argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    if ((status = expect_serve(command, &invocation)) != KCOBRA_EXIT_OK) return status;
    kci_log_configure(KCI_LOG_INFO, true);
    sigset_t stop_signals;
    kcobra_stop_signals_block(&stop_signals);
    natsConnection *connection = NULL;
    status = kcobra_nats_connect_long_running(&connection, &invocation.common);
    if (status != KCOBRA_EXIT_OK) return status;
    kci_suggestions *keeper = NULL;
    char error[COMPONENT_ERROR_BYTES] = "";
    kci_suggestions_config config = {
        .file_path = file,
        .node = invocation.common.node != NULL ? invocation.common.node : "kcobra-keeper",
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
    "  kcobra ingress serve --listen 0.0.0.0:4223 --type echo\n"
    "  printf 'REQUEST#alice#1#hello\\n' | nc 127.0.0.1 4223\n";

/* "HOST:PORT", ":PORT" or "PORT" into host (or NULL) and port. */
static bool listen_parse(const char *text, char host[INGRESS_HOST_BYTES_MAX], int *port)
{
    const char *colon = strrchr(text, ':');
    const char *digits = colon != NULL ? colon + 1 : text;
    size_t host_length = colon != NULL ? (size_t)(colon - text) : 0;
    if (host_length >= INGRESS_HOST_BYTES_MAX || digits[0] == '\0') return false;
    char *end = NULL;
    long value = strtol(digits, &end, 10);
    if (*end != '\0' || value < 0 || value > 65535) return false;
    memcpy(host, text, host_length);
    host[host_length] = '\0';
    *port = (int)value;
    return true;
}

static int run_ingress(const kcobra_command *command, int argc, char **argv)
{
    const char *listen = NULL, *type = INGRESS_TYPE_DEFAULT;
    int64_t request_timeout_ms = INGRESS_TIMEOUT_MS_DEFAULT;
    const kcobra_flag flags[] = {
        {"listen", "HOST:PORT", KCOBRA_FLAG_STRING, &listen,
         "where to listen (default 0.0.0.0:4223; port 0: any free port, logged)"},
        {"type", "TYPE", KCOBRA_FLAG_STRING, &type,
         "the request type of every line (default " INGRESS_TYPE_DEFAULT ")"},
        {"request-timeout", "DURATION", KCOBRA_FLAG_DURATION, &request_timeout_ms,
         "time limit per request (default 5s)"},
    };
    kcobra_invocation invocation;
    int status = kcobra_parse(command, flags, KCOBRA_ARRAY_COUNT(flags), argc, argv, &invocation);
    if (status != KCOBRA_EXIT_OK || invocation.help) return status;
    if ((status = expect_serve(command, &invocation)) != KCOBRA_EXIT_OK) return status;
    char host[INGRESS_HOST_BYTES_MAX] = "";
    int port = INGRESS_PORT_DEFAULT;
    if (listen != NULL && !listen_parse(listen, host, &port))
        return kcobra_usage_error(command, "--listen '%s' is not HOST:PORT", listen);
    if (!kcobra_token_valid(type, KC_TYPE_BYTES_MAX))
        return kcobra_usage_error(command, "invalid request type '%s': one subject token", type);
    kci_log_configure(KCI_LOG_INFO, true);
    sigset_t stop_signals;
    kcobra_stop_signals_block(&stop_signals);
    kc_client *client = NULL;
    status = kcobra_client_open(&client, &invocation.common);
    if (status != KCOBRA_EXIT_OK) return status;
    kci_ingress_config config = {
        .host = host[0] != '\0' ? host : NULL,
        .port = port,
        .type = type,
        .timeout_ms = request_timeout_ms,
    };
    kci_ingress *ingress = NULL;
    char error[COMPONENT_ERROR_BYTES] = "";
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

const kcobra_command kcobra_command_ingress = {
    .name = "ingress",
    .synopsis = "ingress serve [--listen HOST:PORT] [--type TYPE] [--request-timeout D]",
    .summary = "run the seed-format ingress as a process of its own",
    .description = INGRESS_DESCRIPTION,
    .run = run_ingress,
    .positional_min = 1,
    .positional_max = 1,
};
