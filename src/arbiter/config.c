/* config.c - the arbiter's settings (config.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY(field) .offset = offsetof(kci_arbiter_settings, field)

static const kci_config_key keys[] = {
    {.name = "enabled", .kind = KCI_KEY_BOOL, KEY(enabled)},
    {.name = "id",
     .kind = KCI_KEY_STRING,
     KEY(id),
     .value_name = "ID",
     .help = "this arbiter's id (default: --node)"},
    {.name = "data_dir",
     .kind = KCI_KEY_STRING,
     KEY(data_dir),
     .value_name = "DIR",
     .help = "keep verdicts in DIR/arbiter-<id>.verdicts.jsonl"},
    {.name = "arbiters",
     .kind = KCI_KEY_SIZE,
     KEY(arbiters),
     .maximum = 64,
     .value_name = "N",
     .help = "the 3f+1 arbiters of the cloud"},
    {.name = "tick",
     .kind = KCI_KEY_DURATION_MS,
     KEY(tick_ms),
     .value_name = "DURATION",
     .help = "how often to probe, rank and vote"},
    {.name = "probe_interval",
     .kind = KCI_KEY_DURATION_MS,
     KEY(probe_interval_ms),
     .value_name = "DURATION",
     .help = "a probe round starts this often"},
    {.name = "probe_timeout",
     .kind = KCI_KEY_DURATION_MS,
     KEY(probe_timeout_ms),
     .value_name = "DURATION",
     .help = "a round's answers are in by then"},
    {.name = "quarantine",
     .kind = KCI_KEY_DURATION_MS,
     KEY(quarantine_ms),
     .value_name = "DURATION",
     .help = "first quarantine length (doubles per repeat)"},
    {.name = "probation",
     .kind = KCI_KEY_DURATION_MS,
     KEY(probation_ms),
     .value_name = "DURATION",
     .help = "probation after reinstatement"},
    {.name = "slow",
     .kind = KCI_KEY_DURATION_MS,
     KEY(slow_ms),
     .value_name = "DURATION",
     .help = "a reply slower than this is bad"},
    {.name = "target",
     .kind = KCI_KEY_DURATION_MS,
     KEY(target_ms),
     .value_name = "DURATION",
     .help = "the latency a type should meet"},
    {.name = "qos_samples",
     .kind = KCI_KEY_SIZE,
     KEY(qos_samples),
     .maximum = 1000000,
     .value_name = "N",
     .help = "samples of a node before its QoS can condemn it"},
    {.name = "probes",
     .kind = KCI_KEY_STRINGS,
     KEY(probes),
     .value_name = "TYPE=PAYLOAD",
     .help = "probe TYPE with PAYLOAD and fuse the replicas' answers (repeatable)",
     .flag = "probe"},
    {.name = "observe_requests",
     .kind = KCI_KEY_BOOL,
     KEY(observe_requests),
     .help = "watch kc.req.> and its replies (off on a nats-server cluster, where a kc.req.> "
             "subscriber counts as a responder)",
     .flag = "no-observe-requests",
     .flag_negates = true},
    {.name = "pretrusted",
     .kind = KCI_KEY_STRINGS,
     KEY(pretrusted),
     .value_name = "NODE",
     .help = "a pre-trusted node for the ranking (repeatable)"},
    {.name = "peer_keys",
     .kind = KCI_KEY_STRINGS,
     KEY(peer_keys),
     .value_name = "ID=KEY",
     .help = "a peer arbiter's vote key, <id>=<hex> (repeatable): its votes must be signed",
     .flag = "peer-key"},
    {.name = "node_keys",
     .kind = KCI_KEY_STRINGS,
     KEY(node_keys),
     .value_name = "NODE=KEY",
     .help = "a reporting node's key, <node>=<hex> (repeatable): its signed kc.qos samples count",
     .flag = "node-key"},
    {.name = "peers",
     .kind = KCI_KEY_STRINGS,
     KEY(peers),
     .value_name = "ID",
     .help = "another arbiter whose votes count (repeatable; default: any)",
     .flag = "peer"},
    {.name = "verdict_storage",
     .kind = KCI_KEY_STRING,
     KEY(verdict_storage),
     .value_name = "local|jetstream",
     .help = "keep verdicts in a file (local) or on a JetStream stream every arbiter follows"},
    {.name = "verdict_stream",
     .kind = KCI_KEY_STRING,
     KEY(verdict_stream),
     .value_name = "NAME",
     .help = "the JetStream stream of the verdicts (jetstream)"},
    {.name = "replicas",
     .kind = KCI_KEY_SIZE,
     KEY(replicas),
     .maximum = KCI_ARBITER_VERDICT_REPLICAS_MAX,
     .value_name = "N",
     .help = "the verdict stream's replicas when this arbiter creates it (1 on a single server)"},
    {.name = "verdict_servers",
     .kind = KCI_KEY_STRING,
     KEY(verdict_servers),
     .value_name = "URLS",
     .help = "the JetStream servers, comma-separated (default: the arbiter's own connection)"},
};

const kci_config_key *kci_arbiter_settings_keys(size_t *count)
{
    *count = KCI_CONFIG_KEY_COUNT(keys);
    return keys;
}

void kci_arbiter_settings_init(kci_arbiter_settings *settings)
{
    kci_arbiter_config defaults;
    kci_arbiter_config_default(&defaults);
    *settings = (kci_arbiter_settings){
        .arbiters = defaults.arbiter_count,
        .tick_ms = defaults.tick_ms,
        .probe_interval_ms = defaults.probe_interval_ms,
        .probe_timeout_ms = defaults.probe_timeout_ms,
        .quarantine_ms = defaults.quarantine_ms,
        .probation_ms = defaults.probation_ms,
        .slow_ms = (int64_t)defaults.qos.slow_ms,
        .target_ms = (int64_t)defaults.qos.target_ms,
        .qos_samples = defaults.qos_samples_min,
        .replicas = defaults.verdict_replicas,
        .observe_requests = defaults.observe_requests,
    };
    /* Strings are owned: a failed copy leaves NULL, read as the default. */
    (void)kci_config_string_set(&settings->verdict_storage, "local");
    (void)kci_config_string_set(&settings->verdict_stream, defaults.verdict_stream);
}

static bool verdicts_jetstream(const kci_arbiter_settings *settings)
{
    return settings->verdict_storage != NULL && strcmp(settings->verdict_storage, "jetstream") == 0;
}

kc_err kci_arbiter_settings_check(const kci_arbiter_settings *settings, char *error,
                                  size_t error_size)
{
    if (settings->probes.count > KCI_ARBITER_PROBES_MAX ||
        settings->peer_keys.count > KCI_ARBITER_PEERS_MAX ||
        settings->pretrusted.count > KCI_ARBITER_PRETRUSTED_MAX ||
        settings->peers.count > KCI_ARBITER_PEERS_MAX ||
        settings->node_keys.count > KCI_ARBITER_NODE_KEYS_MAX) {
        snprintf(error, error_size,
                 "arbiter: at most %d probes, %d pretrusted nodes, %d peers, %d node keys",
                 KCI_ARBITER_PROBES_MAX, KCI_ARBITER_PRETRUSTED_MAX, KCI_ARBITER_PEERS_MAX,
                 KCI_ARBITER_NODE_KEYS_MAX);
        return KC_ERR_CONFIG;
    }
    if (settings->verdict_storage != NULL && strcmp(settings->verdict_storage, "local") != 0 &&
        !verdicts_jetstream(settings)) {
        snprintf(error, error_size, "arbiter verdict_storage is local or jetstream, not \"%s\"",
                 settings->verdict_storage);
        return KC_ERR_CONFIG;
    }
    for (size_t i = 0; i < settings->probes.count; i++) {
        const char *probe = settings->probes.items[i];
        if (strchr(probe, '=') == NULL || probe[0] == '=') {
            snprintf(error, error_size, "arbiter probe \"%s\" is not \"<type>=<payload>\"", probe);
            return KC_ERR_CONFIG;
        }
    }
    return KC_OK;
}

kc_err kci_arbiter_settings_runtime(const kci_arbiter_settings *settings,
                                    kci_arbiter_config *config, char **probe_texts, char *error,
                                    size_t error_size)
{
    kci_arbiter_config_default(config);
    memset(probe_texts, 0, KCI_ARBITER_PROBES_MAX * sizeof *probe_texts);
    config->id = settings->id;
    config->data_dir = settings->data_dir;
    config->arbiter_count = (uint32_t)settings->arbiters;
    config->tick_ms = settings->tick_ms;
    config->observe_requests = settings->observe_requests;
    config->probe_interval_ms = settings->probe_interval_ms;
    config->probe_timeout_ms = settings->probe_timeout_ms < settings->probe_interval_ms
                                   ? settings->probe_timeout_ms
                                   : settings->probe_interval_ms;
    config->quarantine_ms = settings->quarantine_ms;
    config->probation_ms = settings->probation_ms;
    config->qos.slow_ms = (double)settings->slow_ms;
    config->qos.target_ms = (double)settings->target_ms;
    config->qos_samples_min = (uint32_t)settings->qos_samples;
    config->verdicts_jetstream = verdicts_jetstream(settings);
    if (settings->verdict_stream != NULL) config->verdict_stream = settings->verdict_stream;
    config->verdict_replicas = (uint32_t)settings->replicas;
    config->verdict_servers = settings->verdict_servers;
    for (size_t i = 0; i < settings->probes.count && i < KCI_ARBITER_PROBES_MAX; i++) {
        probe_texts[i] = strdup(settings->probes.items[i]);
        if (probe_texts[i] == NULL ||
            !kci_arbiter_probe_parse(&config->probes[config->probe_count], probe_texts[i])) {
            kc_err err = probe_texts[i] == NULL ? KC_ERR_NOMEM : KC_ERR_CONFIG;
            snprintf(error, error_size, "arbiter probe \"%s\" is not \"<type>=<payload>\"",
                     settings->probes.items[i]);
            kci_arbiter_probe_texts_free(probe_texts);
            return err;
        }
        config->probe_count++;
    }
    for (size_t i = 0; i < settings->pretrusted.count && i < KCI_ARBITER_PRETRUSTED_MAX; i++)
        config->pretrusted[config->pretrusted_count++] = settings->pretrusted.items[i];
    for (size_t i = 0; i < settings->peers.count && i < KCI_ARBITER_PEERS_MAX; i++)
        config->peers[config->peer_count++] = settings->peers.items[i];
    for (size_t i = 0; i < settings->peer_keys.count && i < KCI_ARBITER_PEERS_MAX; i++) {
        if (!kci_vote_key_parse(&config->peer_keys[config->peer_key_count],
                                settings->peer_keys.items[i])) {
            snprintf(error, error_size, "arbiter peer key \"%s\" is not \"<id>=<64 hex digits>\"",
                     settings->peer_keys.items[i]);
            kci_arbiter_probe_texts_free(probe_texts);
            return KC_ERR_CONFIG;
        }
        config->peer_key_count++;
    }
    for (size_t i = 0; i < settings->node_keys.count && i < KCI_ARBITER_NODE_KEYS_MAX; i++) {
        if (!kci_vote_key_parse(&config->node_keys[config->node_key_count],
                                settings->node_keys.items[i])) {
            snprintf(error, error_size, "arbiter node key \"%s\" is not \"<node>=<64 hex digits>\"",
                     settings->node_keys.items[i]);
            kci_arbiter_probe_texts_free(probe_texts);
            return KC_ERR_CONFIG;
        }
        config->node_key_count++;
    }
    return KC_OK;
}

void kci_arbiter_probe_texts_free(char **probe_texts)
{
    for (size_t i = 0; i < KCI_ARBITER_PROBES_MAX; i++) {
        free(probe_texts[i]);
        probe_texts[i] = NULL;
    }
}

void kci_arbiter_settings_free(kci_arbiter_settings *settings)
{
    kci_config_free_fields(keys, KCI_CONFIG_KEY_COUNT(keys), settings);
}
