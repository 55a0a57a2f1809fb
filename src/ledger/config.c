/* config.c - the ledger's settings (config.h). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#define KEY(field) .offset = offsetof(kci_ledger_settings, field)

static const kci_config_key keys[] = {
    {.name = "enabled", .kind = KCI_KEY_BOOL, KEY(enabled)},
    {.name = "dir",
     .kind = KCI_KEY_STRING,
     KEY(dir),
     .value_name = "DIR",
     .help = "serve: the data directory"},
    {.name = "workers",
     .kind = KCI_KEY_SIZE,
     KEY(workers),
     .maximum = KCI_LEDGER_WORKERS_MAX,
     .value_name = "N",
     .help = "serve: verifying threads (the default is one per core)"},
    {.name = "mint",
     .kind = KCI_KEY_BOOL,
     KEY(mint),
     .help = "serve: refuse kc.ledger.mint",
     .flag = "no-mint",
     .flag_negates = true},
    {.name = "map_size",
     .kind = KCI_KEY_SIZE,
     KEY(map_bytes),
     .maximum = INT64_MAX,
     .value_name = "SIZE",
     .help = "serve: LMDB map size (address space; the file grows as needed)"},
    {.name = "reap_interval",
     .kind = KCI_KEY_DURATION_MS,
     KEY(reap_interval_ms),
     .value_name = "DURATION",
     .help = "serve: how often the reaper runs"},
    {.name = "reap_age",
     .kind = KCI_KEY_DURATION_MS,
     KEY(reap_age_ms),
     .value_name = "DURATION",
     .help = "serve: how long a retired coin's trail is kept"},
    {.name = "storage",
     .kind = KCI_KEY_STRING,
     KEY(storage),
     .value_name = "local|jetstream",
     .help = "serve: local LMDB, or replicated through a JetStream stream (docs/ledger.md)"},
    {.name = "stream",
     .kind = KCI_KEY_STRING,
     KEY(stream),
     .value_name = "NAME",
     .help = "serve, jetstream: the stream of the ledger's log"},
    {.name = "replicas",
     .kind = KCI_KEY_SIZE,
     KEY(replicas),
     .minimum = 1,
     .maximum = KCI_LEDGER_STREAM_REPLICAS_MAX,
     .value_name = "N",
     .help = "serve, jetstream: the log's replicas when this ledger creates it (1 on one server)",
     .flag = "stream-replicas"}, /* --replicas is audit's */
    KCI_LEASE_SETTINGS_KEYS(kci_ledger_settings, lease),
    /* kcobrad's broker keeps kc.ledger.mint to these users (file only) */
    {.name = "operators", .kind = KCI_KEY_STRINGS, KEY(operators)},
    {.name = "mint_open", .kind = KCI_KEY_BOOL, KEY(mint_open)},
};

const kci_config_key *kci_ledger_settings_keys(size_t *count)
{
    *count = KCI_CONFIG_KEY_COUNT(keys);
    return keys;
}

kc_err kci_ledger_settings_init(kci_ledger_settings *settings, const char *dir)
{
    kci_ledger_config defaults = kci_ledger_config_defaults(dir);
    *settings = (kci_ledger_settings){
        .workers = defaults.worker_count,
        .mint = !defaults.mint_disabled,
        .map_bytes = (int64_t)defaults.map_bytes,
        .reap_interval_ms = defaults.reap_interval_ms,
        .reap_age_ms = defaults.reap_age_ms,
        .replicas = defaults.stream_replicas,
    };
    kc_err err = kci_config_string_set(&settings->dir, dir);
    if (err == KC_OK) err = kci_config_string_set(&settings->storage, KCI_LEDGER_STORAGE_LOCAL);
    if (err == KC_OK) err = kci_config_string_set(&settings->stream, defaults.stream);
    if (err == KC_OK) err = kci_lease_settings_init(&settings->lease, "ledger");
    return err;
}

kc_err kci_ledger_settings_check(const kci_ledger_settings *settings, char *error,
                                 size_t error_size)
{
    if (settings->dir != NULL && settings->dir[0] == '\0') {
        snprintf(error, error_size, "ledger dir is empty");
        return KC_ERR_CONFIG;
    }
    bool jetstream =
        settings->storage != NULL && strcmp(settings->storage, KCI_LEDGER_STORAGE_JETSTREAM) == 0;
    if (!jetstream &&
        (settings->storage == NULL || strcmp(settings->storage, KCI_LEDGER_STORAGE_LOCAL) != 0)) {
        snprintf(error, error_size, "ledger storage \"%s\" is neither local nor jetstream",
                 settings->storage != NULL ? settings->storage : "");
        return KC_ERR_CONFIG;
    }
    if (jetstream && (settings->stream == NULL || settings->stream[0] == '\0')) {
        snprintf(error, error_size, "ledger stream is empty");
        return KC_ERR_CONFIG;
    }
    return jetstream ? kci_lease_settings_check(&settings->lease, error, error_size) : KC_OK;
}

kci_ledger_config kci_ledger_settings_runtime(const kci_ledger_settings *settings, const char *node)
{
    kci_ledger_config config = kci_ledger_config_defaults(settings->dir);
    if (node != NULL) config.node = node; /* NULL: no --node, the ledger's own name */
    config.worker_count = (int)settings->workers;
    config.map_bytes = (uint64_t)settings->map_bytes;
    config.mint_disabled = !settings->mint;
    config.reap_interval_ms = settings->reap_interval_ms;
    config.reap_age_ms = settings->reap_age_ms;
    config.replicated =
        settings->storage != NULL && strcmp(settings->storage, KCI_LEDGER_STORAGE_JETSTREAM) == 0;
    config.stream = settings->stream;
    config.stream_replicas = (int)settings->replicas;
    config.lease = &settings->lease;
    return config;
}

void kci_ledger_settings_free(kci_ledger_settings *settings)
{
    kci_config_free_fields(keys, KCI_CONFIG_KEY_COUNT(keys), settings);
}
