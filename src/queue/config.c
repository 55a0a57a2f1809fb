/* config.c - the persister's settings (config.h). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "queue/log.h"
#include "queue/replicated.h"
#include "queue/segment.h"
#include "service/headers.h"

#define KEY(field) .offset = offsetof(kci_persister_settings, field)

static const kci_config_key keys[] = {
    {.name = "enabled", .kind = KCI_KEY_BOOL, KEY(enabled)},
    {.name = "dir",
     .kind = KCI_KEY_STRING,
     KEY(dir),
     .value_name = "DIR",
     .help = "the queue directory"},
    {.name = "durability",
     .kind = KCI_KEY_STRING,
     KEY(durability),
     .value_name = "MODE",
     .help = "serve: batch, always or none"},
    {.name = "segment_size",
     .kind = KCI_KEY_SIZE,
     KEY(segment_bytes),
     .minimum = KCI_SEGMENT_BYTES_MIN,
     .maximum = KCI_SEGMENT_BYTES_MAX,
     .value_name = "BYTES",
     .help = "serve: segment file size"},
    {.name = "redelivery_timeout",
     .kind = KCI_KEY_DURATION_MS,
     KEY(redelivery_timeout_ms),
     .value_name = "DURATION",
     .help = "serve: dispatch again after this long without a reply"},
    {.name = "redelivery_backoff_max",
     .kind = KCI_KEY_DURATION_MS,
     KEY(redelivery_backoff_max_ms),
     .value_name = "DURATION",
     .help = "serve: the longest wait between dispatches",
     .flag = "backoff-max"},
    {.name = "max_attempts",
     .kind = KCI_KEY_SIZE,
     KEY(attempts_max),
     .maximum = KCI_PERSISTER_ATTEMPTS_LIMIT,
     .value_name = "N",
     .help = "serve: dispatches before a request is dead",
     .flag = "attempts"},
    {.name = "retention",
     .kind = KCI_KEY_DURATION_MS,
     KEY(retention_ms),
     .zero_allowed = true,
     .value_name = "DURATION",
     .help = "compact, serve: keep replied segments this long (0: remove once replied)"},
    {.name = "skip_corrupt",
     .kind = KCI_KEY_BOOL,
     KEY(skip_corrupt),
     .help = "serve, compact: start even with corrupt records in the middle (they are skipped)"},
    {.name = "record_requests",
     .kind = KCI_KEY_BOOL,
     KEY(record_requests),
     .help = "serve: also keep plain kc.req.> requests and their replies"},
    {.name = "probe_interval",
     .kind = KCI_KEY_DURATION_MS,
     KEY(probe_interval_ms),
     .value_name = "DURATION",
     .help = "serve: how often a type nobody serves is probed for a service"},
    {.name = "storage",
     .kind = KCI_KEY_STRING,
     KEY(storage),
     .value_name = "KIND",
     .help = "local (the log in --dir) or jetstream (a stream on the --server cluster)"},
    {.name = "stream",
     .kind = KCI_KEY_STRING,
     KEY(stream),
     .value_name = "NAME",
     .help = "jetstream: the stream holding the queue's records"},
    {.name = "replicas",
     .kind = KCI_KEY_SIZE,
     KEY(replicas),
     .minimum = 1,
     .maximum = KCI_LEASE_REPLICAS_MAX,
     .value_name = "N",
     .help = "jetstream: the stream's replicas when it is created (3 on a cluster, 1 alone)"},
    {.name = "stream_max_age",
     .kind = KCI_KEY_DURATION_MS,
     KEY(stream_max_age_ms),
     .zero_allowed = true,
     .value_name = "DURATION",
     .help = "jetstream: the stream drops records older than this (0: never); set when created"},
    KCI_LEASE_SETTINGS_KEYS(kci_persister_settings, lease),
};

const kci_config_key *kci_persister_settings_keys(size_t *count)
{
    *count = KCI_CONFIG_KEY_COUNT(keys);
    return keys;
}

kc_err kci_persister_settings_init(kci_persister_settings *settings, const char *dir)
{
    kci_persister_config defaults = kci_persister_config_defaults(dir);
    *settings = (kci_persister_settings){
        .enabled = true,
        .segment_bytes = defaults.segment_bytes,
        .redelivery_timeout_ms = defaults.redelivery_timeout_ms,
        .redelivery_backoff_max_ms = defaults.redelivery_backoff_max_ms,
        .attempts_max = defaults.attempts_max,
        .retention_ms = defaults.retention_ms,
        .skip_corrupt = defaults.skip_corrupt,
        .record_requests = defaults.record_requests,
        .probe_interval_ms = defaults.probe_interval_ms,
    };
    settings->replicas = KCI_QUEUE_JS_REPLICAS_DEFAULT;
    kc_err err = kci_config_string_set(&settings->dir, dir);
    if (err == KC_OK) err = kci_config_string_set(&settings->storage, "local");
    if (err == KC_OK) err = kci_config_string_set(&settings->stream, KCI_QUEUE_JS_STREAM_DEFAULT);
    if (err == KC_OK) err = kci_lease_settings_init(&settings->lease, KCI_PERSISTER_LEASE_ROLE);
    if (err == KC_OK)
        err =
            kci_config_string_set(&settings->durability, kci_durability_name(defaults.durability));
    return err;
}

kc_err kci_persister_settings_check(const kci_persister_settings *settings, char *error,
                                    size_t error_size)
{
    kci_durability durability;
    if (settings->durability == NULL || !kci_durability_parse(settings->durability, &durability)) {
        snprintf(error, error_size, "persister durability \"%s\" must be batch, always or none",
                 settings->durability != NULL ? settings->durability : "");
        return KC_ERR_CONFIG;
    }
    if (settings->dir == NULL || settings->dir[0] == '\0') {
        snprintf(error, error_size, "persister dir is empty");
        return KC_ERR_CONFIG;
    }
    if (settings->storage == NULL ||
        (strcmp(settings->storage, "local") != 0 && strcmp(settings->storage, "jetstream") != 0)) {
        snprintf(error, error_size, "persister storage \"%s\" must be local or jetstream",
                 settings->storage != NULL ? settings->storage : "");
        return KC_ERR_CONFIG;
    }
    if (settings->stream == NULL || settings->stream[0] == '\0' ||
        strlen(settings->stream) > KCI_QUEUE_JS_STREAM_BYTES_MAX ||
        !kci_token_valid(settings->stream) || strchr(settings->stream, '*') != NULL ||
        strchr(settings->stream, '>') != NULL) {
        snprintf(error, error_size, "persister stream \"%s\" must be one subject token",
                 settings->stream != NULL ? settings->stream : "");
        return KC_ERR_CONFIG;
    }
    return kci_lease_settings_check(&settings->lease, error, error_size);
}

kci_persister_config kci_persister_settings_runtime(const kci_persister_settings *settings,
                                                    const char *node)
{
    kci_persister_config config = kci_persister_config_defaults(settings->dir);
    kci_durability_parse(settings->durability, &config.durability); /* checked already */
    config.segment_bytes = (uint32_t)settings->segment_bytes;
    config.skip_corrupt = settings->skip_corrupt;
    if (node != NULL) config.node = node; /* NULL: no --node, the persister's own name */
    config.redelivery_timeout_ms = settings->redelivery_timeout_ms;
    /* A first wait longer than the backoff's ceiling raises the ceiling:
     * the backoff never shortens a wait that was asked for. */
    config.redelivery_backoff_max_ms =
        settings->redelivery_backoff_max_ms > settings->redelivery_timeout_ms
            ? settings->redelivery_backoff_max_ms
            : settings->redelivery_timeout_ms;
    config.attempts_max = (int)settings->attempts_max;
    config.retention_ms = settings->retention_ms;
    config.record_requests = settings->record_requests;
    config.probe_interval_ms = settings->probe_interval_ms;
    if (strcmp(settings->storage, "jetstream") == 0) { /* checked already */
        config.storage = KCI_QUEUE_STORAGE_JETSTREAM;
        config.jetstream = (kci_queue_js_config){.stream = settings->stream,
                                                 .replicas = (int)settings->replicas,
                                                 .max_age_ms = settings->stream_max_age_ms};
    }
    return config;
}

void kci_persister_settings_lease(const kci_persister_settings *settings, kci_lease_config *lease)
{
    kci_lease_config_init(lease);
    kci_lease_settings_apply(&settings->lease, lease);
}

void kci_persister_settings_free(kci_persister_settings *settings)
{
    kci_config_free_fields(keys, KCI_CONFIG_KEY_COUNT(keys), settings);
}
