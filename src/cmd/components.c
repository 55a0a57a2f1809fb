/* components.c - the host of kcobrad's built-in components (components.h):
 * the suggestion keeper (src/keeper/), the persister (src/queue/), the
 * seed-format ingress (src/ingress/), the ledger (src/ledger/) and the
 * arbiter (src/arbiter/), and the EventNet recorder (src/eventnet/, off by
 * default; enabled on purpose, so its failure fails the start).
 *
 * Each component is a client of the running broker, logged in as its
 * role's user (src/broker/roles.h: the least permissions it needs) through
 * the broker's internal listener (nats://127.0.0.1:<internal port>:
 * loopback, no TLS, the roles' users only, not counted as a connection).
 * kcobrad opens its public listener only after the components are up. The
 * keeper, the persister and the ledger have nats.c connections of their own
 * (kc.suggest, kc.submit.>, kc.reply.get and kc.ledger.> are not
 * kc.req.<type> service subjects); the ingress and the arbiter have a
 * kc_client.
 *
 * Failures: the keeper and the persister are on by default, so when one
 * cannot start (its directory locked by another kcobrad, a directory it
 * cannot write) the error is logged and kcobrad serves without it. The
 * ingress, the ledger and the arbiter are enabled on purpose, so their
 * failure fails the start (kcobrad exits 1), stopping what started before.
 * Stop runs in reverse order, each with a bounded drain, while the broker
 * still serves (kcobrad stops the broker afterwards). */
#include "components.h"

#include <assert.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arbiter/arbiter.h"
#include "broker/auth.h"
#include "broker/roles.h"
#include "common/data_dir.h"
#include "common/log.h"
#include "eventnet/recorder.h"
#include "ingress/config.h"
#include "ingress/ingress.h"
#include "keeper/config.h"
#include "keeper/suggestions.h"
#include "kingcobra/kingcobra.h"
#include "ledger/config.h"
#include "ledger/serve.h"
#include "queue/config.h"
#include "queue/persister.h"
#include "service/connect.h"
#include "service/headers.h"

enum {
    URL_BYTES_MAX = 320,
    NODE_BYTES_MAX = KC_NODE_BYTES_MAX,
    CONNECT_TIMEOUT_MS = 2000,
    RECONNECT_WAIT_MS = 250,
    DRAIN_MS = 1000,        /* each component's drain at stop */
    CLIENT_CLOSE_MS = 1000, /* then its connection's */
};

#define QUEUE_DIRECTORY_NAME "queue"
#define DEFAULT_NODE "kcobrad"
#define LEDGER_DIR_NAME "ledger"

struct kci_components {
    natsConnection *keeper_connection;
    kci_suggestions *suggestions;
    kc_client *ingress_client;
    kci_ingress *ingress;
    natsConnection *ledger_connection;
    kci_ledger *ledger;
    natsConnection *persister_connection;
    kci_persister *persister;
    kc_client *arbiter_client;
    kci_arbiter *arbiter;
    natsConnection *eventnet_connection;
    kci_eventnet_recorder *eventnet;
};

/* ---- config ------------------------------------------------------------------ */

/* The server name if it is one subject token, else the host name up to its
 * first dot (as libkingcobra's default), else "kcobrad". */
static char *node_name(const kci_options *options)
{
    if (options->server_name != NULL && strlen(options->server_name) <= NODE_BYTES_MAX &&
        kci_token_valid(options->server_name))
        return strdup(options->server_name);
    char host[KC_NODE_BYTES_MAX + 1];
    if (kci_node_from_host(host) != KC_OK) snprintf(host, sizeof host, DEFAULT_NODE);
    return strdup(host);
}

static char *join_path(const char *directory, const char *name)
{
    size_t length = strlen(directory) + 1 + strlen(name) + 1;
    char *path = malloc(length);
    if (path != NULL) snprintf(path, length, "%s/%s", directory, name);
    return path;
}

/* A part's block of the config file, read with the part's key table. */
static kc_err apply_block(const kci_options *options, const char *block, const kci_config_key *keys,
                          size_t key_count, void *base, char *error, size_t error_size)
{
    const kci_conf_value *map = options->conf != NULL ? kci_conf_get(options->conf, block) : NULL;
    if (map == NULL) return KC_OK;
    kci_config_context context = {.source = options->config_file != NULL ? options->config_file
                                                                         : "config",
                                  .error = error,
                                  .error_size = error_size};
    return kci_config_apply_map(&context, block, map, keys, key_count, base);
}

/* Every part: its defaults, its block read with its own key table, the
 * --ingress_port flag, its checks. */
static kc_err parts_load(kci_components_config *config, const kci_options *options,
                         const char *data_dir, char *error, size_t error_size)
{
    size_t key_count = 0;
    const kci_config_key *keys = kci_keeper_config_keys(&key_count);
    kc_err err = kci_keeper_config_init(&config->keeper, data_dir);
    if (err == KC_OK)
        err = apply_block(options, "suggestions", keys, key_count, &config->keeper, error,
                          error_size);
    if (err == KC_OK) err = kci_keeper_config_check(&config->keeper, error, error_size);
    if (err != KC_OK) return err;
    keys = kci_ingress_settings_keys(&key_count);
    err = kci_ingress_settings_init(&config->ingress);
    if (err == KC_OK)
        err = apply_block(options, "ingress", keys, key_count, &config->ingress, error, error_size);
    if (err == KC_OK && options->ingress_port_flag != -2) { /* --ingress_port: run it there */
        config->ingress.enabled = true;
        config->ingress.port = options->ingress_port_flag;
    }
    if (err == KC_OK) err = kci_ingress_settings_check(&config->ingress, error, error_size);
    if (err != KC_OK) return err;
    kci_arbiter_settings_init(&config->arbiter);
    keys = kci_arbiter_settings_keys(&key_count);
    err = kci_config_string_set(&config->arbiter.data_dir, data_dir); /* verdicts kept there */
    if (err == KC_OK)
        err = apply_block(options, "arbiter", keys, key_count, &config->arbiter, error, error_size);
    if (err == KC_OK) err = kci_arbiter_settings_check(&config->arbiter, error, error_size);
    if (err != KC_OK) return err;
    char *dir = join_path(data_dir, LEDGER_DIR_NAME);
    err = dir != NULL ? kci_ledger_settings_init(&config->ledger, dir) : KC_ERR_NOMEM;
    free(dir);
    keys = kci_ledger_settings_keys(&key_count);
    /* A ledger { } block runs the ledger unless it says enabled: false. */
    if (options->conf != NULL && kci_conf_get(options->conf, "ledger") != NULL)
        config->ledger.enabled = true;
    if (err == KC_OK)
        err = apply_block(options, "ledger", keys, key_count, &config->ledger, error, error_size);
    if (err == KC_OK) err = kci_ledger_settings_check(&config->ledger, error, error_size);
    if (err != KC_OK) return err;
    dir = join_path(data_dir, QUEUE_DIRECTORY_NAME);
    err = dir != NULL ? kci_persister_settings_init(&config->persister, dir) : KC_ERR_NOMEM;
    free(dir);
    keys = kci_persister_settings_keys(&key_count);
    if (err == KC_OK)
        err = apply_block(options, "persister", keys, key_count, &config->persister, error,
                          error_size);
    if (err == KC_OK) err = kci_persister_settings_check(&config->persister, error, error_size);
    /* kcobrad's broker has no JetStream: the stream lives on a nats-server
     * cluster, and the persister runs against it as a process of its own. */
    if (err == KC_OK && config->persister.enabled &&
        strcmp(config->persister.storage, "jetstream") == 0) {
        snprintf(error, error_size,
                 "persister storage jetstream: run `kcobra queue serve --storage jetstream` "
                 "against the nats-server cluster (kcobrad has no JetStream)");
        err = KC_ERR_CONFIG;
    }
    return err;
}

/* The EventNet recorder: off unless its block says enabled: true. */
static kc_err eventnet_load(kci_components_config *config, const kci_options *options,
                            const char *data_dir, char *error, size_t error_size)
{
    size_t key_count = 0;
    const kci_config_key *keys = kci_eventnet_config_keys(&key_count);
    kc_err err = kci_eventnet_config_init(&config->eventnet, data_dir);
    if (err == KC_OK)
        err =
            apply_block(options, "eventnet", keys, key_count, &config->eventnet, error, error_size);
    if (err == KC_OK) err = kci_eventnet_config_check(&config->eventnet, error, error_size);
    return err;
}

kc_err kci_components_config_load(kci_components_config *config, const kci_options *options,
                                  char *error, size_t error_size)
{
    memset(config, 0, sizeof *config);
    const char *data_dir = options->data_dir != NULL ? options->data_dir : kci_data_dir_default();
    config->node = node_name(options);
    kc_err err = parts_load(config, options, data_dir, error, error_size);
    if (err == KC_OK) err = eventnet_load(config, options, data_dir, error, error_size);
    if (err != KC_OK) {
        if (err == KC_ERR_NOMEM) snprintf(error, error_size, "out of memory");
        kci_components_config_free(config);
        return err;
    }
    return KC_OK;
}

kc_err kci_components_check(const kci_options *options, char *error, size_t error_size)
{
    kci_components_config config;
    kc_err err = kci_components_config_load(&config, options, error, error_size);
    if (err == KC_OK) kci_components_config_free(&config);
    return err;
}

/* The ingress's requests carry its user's permissions (docs/ingress.md). */
static kc_err ingress_user(kci_options *options, const kci_ingress_settings *ingress, char *error,
                           size_t error_size)
{
    free(options->ingress_user);
    options->ingress_user = NULL;
    if (!ingress->enabled || ingress->user == NULL) return KC_OK;
    bool known = false;
    for (size_t i = 0; i < options->user_count; i++)
        known |= strcmp(options->users[i].user, ingress->user) == 0;
    if (!known) {
        snprintf(error, error_size, "ingress user \"%s\" is not a user of the authorization block",
                 ingress->user);
        return KC_ERR_CONFIG;
    }
    options->ingress_user = strdup(ingress->user);
    return options->ingress_user != NULL ? KC_OK : KC_ERR_NOMEM;
}

kc_err kci_components_adjust(kci_options *options, char *error, size_t error_size)
{
    kci_components_config config;
    kc_err err = kci_components_config_load(&config, options, error, error_size);
    if (err != KC_OK) return err;
    err = ingress_user(options, &config.ingress, error, error_size);
    if (err == KC_OK) err = kci_components_mint_guard(options, &config.ledger);
    if (err == KC_ERR_NOMEM) snprintf(error, error_size, "out of memory");
    kci_components_config_free(&config);
    if (err == KC_OK) err = kci_components_keeper_guard(options, error, error_size);
    return err;
}

void kci_components_config_free(kci_components_config *config)
{
    free(config->node);
    kci_keeper_config_free(&config->keeper);
    kci_ingress_settings_free(&config->ingress);
    kci_ledger_settings_free(&config->ledger);
    kci_persister_settings_free(&config->persister);
    kci_arbiter_settings_free(&config->arbiter);
    kci_eventnet_config_free(&config->eventnet);
    memset(config, 0, sizeof *config);
}

/* ---- connections -------------------------------------------------------------- */

/* The broker's internal listener: loopback, no TLS, internal user only. */
static void broker_url(char url[URL_BYTES_MAX], const kci_server *server)
{
    snprintf(url, URL_BYTES_MAX, "nats://127.0.0.1:%d", server->internal_port);
}

/* How every component reaches the internal listener: its role's user, the
 * password made at start, and reconnects for ever. */
static void internal_options(kc_client_options *options, const char *url, kci_role role,
                             const kci_server *server)
{
    kc_client_options_init(options);
    options->servers = url;
    options->user = kci_role_user(role);
    options->password = server->internal_password;
    options->connect_timeout_ms = CONNECT_TIMEOUT_MS;
    options->reconnect_attempts_max = -1;
    options->reconnect_wait_ms = RECONNECT_WAIT_MS;
}

/* persister: its publishes are buffered (no send asap): the log's
 * completer thread publishes a run of acknowledgements and dispatches and
 * then flushes them in one write (kci_persister_flush_published in
 * src/queue/submit.c); send asap made a write, and a wake-up of the
 * broker, per message (bench/run_queue.sh: 15 % more
 * acknowledged submits/s, 20 % less kcobrad CPU per submit without it). */
static kc_err component_connect(natsConnection **out, const kci_server *server, const char *name,
                                kci_role role, bool ordered, char *error, size_t error_size)
{
    char url[URL_BYTES_MAX];
    broker_url(url, server);
    kc_client_options settings;
    internal_options(&settings, url, role, server);
    /* The persister keeps "no responders" on (nats.c's default): a 503 on
     * its inbox says a dispatch reached nobody, so the request waits for a
     * service instead of spending an attempt (src/queue/waiting.c). */
    const kci_connect_spec spec = {.options = &settings, .name = name, .ordered = ordered};
    kc_err err = kci_connect(out, &spec);
    if (err != KC_OK) snprintf(error, error_size, "%s: %s", name, kc_last_error());
    return err;
}

static kc_err client_connect(kc_client **out, const char *component, const char *name,
                             kci_role role, const kci_components_config *config,
                             const kci_server *server, char *error, size_t error_size)
{
    char url[URL_BYTES_MAX];
    broker_url(url, server);
    kc_client_options options;
    internal_options(&options, url, role, server);
    options.node = config->node;
    options.name = name;
    kc_err err = kc_client_open(out, &options);
    if (err == KC_OK) return KC_OK;
    snprintf(error, error_size, "%s: cannot connect to %s: %s", component, url, kc_last_error());
    return err;
}

/* Closes a component's kc_client (after the component stopped): closing
 * answers what is still in flight. */
static void client_close(kc_client **client, const char *component)
{
    if (*client != NULL && kc_client_close(*client, CLIENT_CLOSE_MS) != KC_OK)
        kci_warn("%s: closing its connection: %s", component, kc_last_error());
    *client = NULL;
}

/* ---- start and stop ------------------------------------------------------------- */

static kc_err start_suggestions(kci_components *components, const kci_components_config *config,
                                const kci_server *server, char *error, size_t error_size)
{
    kc_err err = component_connect(&components->keeper_connection, server, "kcobrad-suggestions",
                                   KCI_ROLE_KEEPER, false, error, error_size);
    if (err != KC_OK) return err;
    kci_components_keeper_guard_log(&config->keeper, &server->options);
    kci_suggestions_config keeper_config = {.file_path = config->keeper.file,
                                            .node = config->node,
                                            .operators = config->keeper.operators.items,
                                            .operator_count = config->keeper.operators.count};
    return kci_suggestions_start(&components->suggestions, components->keeper_connection,
                                 &keeper_config, error, error_size);
}

static kc_err start_ingress(kci_components *components, const kci_components_config *config,
                            const kci_server *server, char *error, size_t error_size)
{
    kc_err err = client_connect(&components->ingress_client, "ingress", "kcobrad-ingress",
                                KCI_ROLE_INGRESS, config, server, error, error_size);
    if (err != KC_OK) return err;
    kci_ingress_config ingress_config = kci_ingress_settings_runtime(&config->ingress);
    return kci_ingress_start(&components->ingress, components->ingress_client, &ingress_config,
                             error, error_size);
}

static kc_err start_ledger(kci_components *components, const kci_components_config *config,
                           const kci_server *server, char *error, size_t error_size)
{
    kc_err err = component_connect(&components->ledger_connection, server, "kcobrad-ledger",
                                   KCI_ROLE_LEDGER, false, error, error_size);
    if (err != KC_OK) return err;
    kci_ledger_config ledger_config = kci_ledger_settings_runtime(&config->ledger, config->node);
    /* Who may mint, and a dangerous combination, are said at start
     * (docs/ledger.md, "Who may mint"). */
    kci_components_mint_guard_log(&config->ledger, &server->options);
    return kci_ledger_start(&components->ledger, components->ledger_connection, &ledger_config,
                            error, error_size);
}

static void stop_ledger(kci_components *components)
{
    kci_ledger_stop(components->ledger, DRAIN_MS);
    components->ledger = NULL;
    kci_disconnect(&components->ledger_connection);
}

/* The persister is on by default like the keeper. When its log is corrupt
 * in the middle (and skip_corrupt is off) or cannot be read, kcobrad does
 * not start: the operator must look. When the directory is locked by
 * another process (a second kcobrad started in the same directory), or its
 * connection fails, kcobrad serves without it, as without the keeper, and
 * says so. */
static kc_err start_persister(kci_components *components, const kci_components_config *config,
                              const kci_server *server, char *error, size_t error_size)
{
    kc_err err =
        component_connect(&components->persister_connection, server, "kcobrad-persister",
                          KCI_ROLE_PERSISTER, config->persister.record_requests, error, error_size);
    if (err != KC_OK) {
        kci_error("%s; running without the persister (kc.submit is not served)", error);
        error[0] = '\0';
        return KC_OK;
    }
    kci_persister_config persister_config =
        kci_persister_settings_runtime(&config->persister, config->node);
    err = kci_persister_start(&components->persister, components->persister_connection,
                              &persister_config, error, error_size);
    if (err == KC_ERR_EXISTS) { /* e.g. a second kcobrad started in the same directory */
        kci_error("%s; running without the persister (kc.submit is not served)", error);
        error[0] = '\0';
        return KC_OK;
    }
    return err;
}

static void stop_persister(kci_components *components)
{
    kci_persister_stop(components->persister, DRAIN_MS);
    components->persister = NULL;
    kci_disconnect(&components->persister_connection);
}

/* The arbiter hosted by kcobrad enforces its verdicts in the broker
 * (kc.sys.quarantine.set is accepted from the internal listener only). */
static kc_err start_arbiter(kci_components *components, const kci_components_config *config,
                            const kci_server *server, char *error, size_t error_size)
{
    kc_err err = client_connect(&components->arbiter_client, "arbiter", "kcobrad-arbiter",
                                KCI_ROLE_ARBITER, config, server, error, error_size);
    if (err != KC_OK) return err;
    kci_arbiter_config arbiter_config;
    char *probe_texts[KCI_ARBITER_PROBES_MAX];
    err = kci_arbiter_settings_runtime(&config->arbiter, &arbiter_config, probe_texts, error,
                                       error_size);
    if (err == KC_OK && arbiter_config.verdicts_jetstream &&
        arbiter_config.verdict_servers == NULL) {
        snprintf(error, error_size,
                 "arbiter: verdict_storage jetstream needs verdict_servers "
                 "(the JetStream cluster's URLs): kcobrad has no JetStream");
        kci_arbiter_probe_texts_free(probe_texts);
        err = KC_ERR_CONFIG;
    }
    if (err != KC_OK) return err;
    if (arbiter_config.id == NULL) arbiter_config.id = config->node;
    arbiter_config.enforce = true;
    err = kci_arbiter_start(&components->arbiter, components->arbiter_client, &arbiter_config,
                            error, error_size);
    kci_arbiter_probe_texts_free(probe_texts); /* the arbiter keeps copies */
    return err;
}

static void stop_arbiter(kci_components *components)
{
    kci_arbiter_stop(components->arbiter, DRAIN_MS);
    components->arbiter = NULL;
    client_close(&components->arbiter_client, "arbiter");
}

static void stop_suggestions(kci_components *components)
{
    kci_suggestions_stop(components->suggestions, DRAIN_MS);
    components->suggestions = NULL;
    kci_disconnect(&components->keeper_connection);
}

static kc_err start_eventnet(kci_components *components, const kci_components_config *config,
                             const kci_server *server, char *error, size_t error_size)
{
    kc_err err = component_connect(&components->eventnet_connection, server, "kcobrad-eventnet",
                                   KCI_ROLE_EVENTNET, false, error, error_size);
    if (err != KC_OK) return err;
    kci_eventnet_recorder_config recorder_config = {.directory = config->eventnet.directory,
                                                    .events_max = config->eventnet.events_max,
                                                    .node = config->node};
    return kci_eventnet_recorder_start(&components->eventnet, components->eventnet_connection,
                                       &recorder_config, error, error_size);
}

static void stop_eventnet(kci_components *components)
{
    kci_eventnet_recorder_stop(components->eventnet, DRAIN_MS);
    components->eventnet = NULL;
    kci_disconnect(&components->eventnet_connection);
}

/* The ingress first stops taking lines, then its client closes, answering
 * what is still in flight. */
static void stop_ingress(kci_components *components)
{
    kci_ingress_stop(components->ingress, DRAIN_MS);
    components->ingress = NULL;
    client_close(&components->ingress_client, "ingress");
}

kc_err kci_components_start(kci_components **out, const kci_components_config *config,
                            kci_server *server, char *error, size_t error_size)
{
    *out = NULL;
    kci_components *components = calloc(1, sizeof *components);
    if (components == NULL) {
        snprintf(error, error_size, "out of memory");
        return KC_ERR_NOMEM;
    }
    kc_err err = KC_OK;
    if (config->node == NULL) {
        snprintf(error, error_size, "out of memory");
        err = KC_ERR_NOMEM;
    }
    /* The recorder first, so it sees what the others send from the start. */
    if (err == KC_OK && config->eventnet.enabled)
        err = start_eventnet(components, config, server, error, error_size);
    if (err == KC_OK && config->keeper.enabled &&
        start_suggestions(components, config, server, error, error_size) != KC_OK) {
        /* On by default, so it must not keep the broker from serving. */
        kci_error("%s; running without the suggestion keeper", error);
        error[0] = '\0';
        stop_suggestions(components);
    }
    if (err == KC_OK && config->persister.enabled)
        err = start_persister(components, config, server, error, error_size);
    if (err == KC_OK && config->ingress.enabled)
        err = start_ingress(components, config, server, error, error_size);
    if (err == KC_OK && config->ledger.enabled)
        err = start_ledger(components, config, server, error, error_size);
    if (err == KC_OK && config->arbiter.enabled)
        err = start_arbiter(components, config, server, error, error_size);
    if (err != KC_OK) {
        kci_components_stop(components);
        return err;
    }
    *out = components;
    return KC_OK;
}

void kci_components_stop(kci_components *components)
{
    if (components == NULL) return;
    /* Reverse order of start. The ingress first stops taking lines, then its
     * client closes, answering what is still in flight. The ledger answers what
     * it has queued. */
    stop_arbiter(components);
    stop_ledger(components);
    stop_ingress(components);
    stop_persister(components);
    stop_suggestions(components);
    stop_eventnet(components);
    free(components);
}

/* ---- reload ---------------------------------------------------------------------- */

/* What reloading one part takes: its name in the log, its settings in a
 * config (and their key table), whether it is enabled, start and stop. */
typedef struct part_ops {
    const char *name;
    size_t settings_offset, settings_size;
    const kci_config_key *(*keys)(size_t *count);
    bool (*enabled)(const kci_components_config *config);
    kc_err (*start)(kci_components *components, const kci_components_config *config,
                    const kci_server *server, char *error, size_t error_size);
    void (*stop)(kci_components *components);
    /* NULL: the key table tells (kci_config_equal) */
    bool (*equal)(const void *running_settings, const void *fresh_settings);
} part_ops;

static bool keeper_enabled(const kci_components_config *config)
{
    return config->keeper.enabled;
}

static bool ingress_enabled(const kci_components_config *config)
{
    return config->ingress.enabled;
}

static bool arbiter_enabled(const kci_components_config *config)
{
    return config->arbiter.enabled;
}

static bool ledger_enabled(const kci_components_config *config)
{
    return config->ledger.enabled;
}

static bool persister_enabled(const kci_components_config *config)
{
    return config->persister.enabled;
}

static bool eventnet_enabled(const kci_components_config *config)
{
    return config->eventnet.enabled;
}

static bool ingress_equal(const void *running_settings, const void *fresh_settings)
{
    return kci_ingress_settings_equal(running_settings, fresh_settings);
}

static const part_ops reloadable_parts[] = {
    {"the suggestion keeper", offsetof(kci_components_config, keeper), sizeof(kci_keeper_config),
     kci_keeper_config_keys, keeper_enabled, start_suggestions, stop_suggestions, NULL},
    {"the ingress", offsetof(kci_components_config, ingress), sizeof(kci_ingress_settings),
     kci_ingress_settings_keys, ingress_enabled, start_ingress, stop_ingress, ingress_equal},
    {"the arbiter", offsetof(kci_components_config, arbiter), sizeof(kci_arbiter_settings),
     kci_arbiter_settings_keys, arbiter_enabled, start_arbiter, stop_arbiter, NULL},
    {"the ledger", offsetof(kci_components_config, ledger), sizeof(kci_ledger_settings),
     kci_ledger_settings_keys, ledger_enabled, start_ledger, stop_ledger, NULL},
    {"the persister", offsetof(kci_components_config, persister), sizeof(kci_persister_settings),
     kci_persister_settings_keys, persister_enabled, start_persister, stop_persister, NULL},
    {"the EventNet recorder", offsetof(kci_components_config, eventnet),
     sizeof(kci_eventnet_config), kci_eventnet_config_keys, eventnet_enabled, start_eventnet,
     stop_eventnet, NULL},
};

/* Stops the part if it ran, takes the fresh settings (running gets them,
 * fresh the old ones, to be freed), starts it if it is enabled now. */
static void part_reload(const part_ops *part, kci_components *components,
                        kci_components_config *running, kci_components_config *fresh,
                        const kci_server *server)
{
    size_t key_count = 0;
    const kci_config_key *keys = part->keys(&key_count);
    char *running_settings = (char *)running + part->settings_offset;
    char *fresh_settings = (char *)fresh + part->settings_offset;
    bool equal = part->equal != NULL
                     ? part->equal(running_settings, fresh_settings)
                     : kci_config_equal(keys, key_count, running_settings, fresh_settings);
    if (equal) return;
    bool was = part->enabled(running), now = part->enabled(fresh);
    if (was) part->stop(components);
    char swap[sizeof(kci_components_config)];
    assert(part->settings_size <= sizeof swap);
    memcpy(swap, running_settings, part->settings_size);
    memcpy(running_settings, fresh_settings, part->settings_size);
    memcpy(fresh_settings, swap, part->settings_size);
    char error[KCI_CONFIG_MESSAGE_BYTES_MAX] = "";
    if (now && part->start(components, running, server, error, sizeof error) != KC_OK) {
        kci_error("reload: %s does not start with the new settings: %s", part->name, error);
        part->stop(components);
        return;
    }
    kci_info("reload: %s %s", part->name,
             !now  ? "stopped"
             : was ? "restarted with the new settings"
                   : "started");
}

void kci_components_reload(kci_components *components, kci_components_config *running,
                           const kci_options *options, const kci_server *server)
{
    kci_components_config fresh;
    char error[KCI_CONFIG_MESSAGE_BYTES_MAX] = "";
    if (kci_components_config_load(&fresh, options, error, sizeof error) != KC_OK) {
        kci_error("reload: the components keep running as they were: %s", error);
        return;
    }
    if (fresh.node != NULL && running->node != NULL && strcmp(fresh.node, running->node) != 0)
        kci_warn("reload: the components' node name (%s) changes only at a restart", running->node);
    for (size_t i = 0; i < sizeof reloadable_parts / sizeof reloadable_parts[0]; i++)
        part_reload(&reloadable_parts[i], components, running, &fresh, server);
    kci_components_config_free(&fresh);
}
