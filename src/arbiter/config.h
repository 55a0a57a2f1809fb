/* config.h - the arbiter's settings (docs/arbiter.md): the `arbiter { }`
 * block of kcobrad's config and `kcobra arbiter serve`'s flags, from one
 * table (src/common/config_keys.h). The defaults are the component's own
 * (kci_arbiter_config_default); kci_arbiter_settings_runtime turns the
 * settings into kci_arbiter_start's parameters. */
#ifndef KCI_ARBITER_CONFIG_H
#define KCI_ARBITER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arbiter/arbiter.h"
#include "common/config_keys.h"

typedef struct kci_arbiter_settings {
    bool enabled;     /* kcobrad runs it (file only); default false */
    char *id;         /* this arbiter's id; NULL: the node */
    char *data_dir;   /* verdicts kept here; NULL: not kept (kcobrad: its data_dir) */
    int64_t arbiters; /* the 3f + 1 arbiters of the cloud */
    int64_t tick_ms;
    int64_t probe_interval_ms;
    int64_t probe_timeout_ms; /* at most probe_interval_ms */
    int64_t quarantine_ms;
    int64_t probation_ms;
    int64_t slow_ms;   /* a reply slower than this is bad */
    int64_t target_ms; /* the latency a type should meet */
    int64_t qos_samples;
    bool observe_requests;         /* watch kc.req.> and the replies */
    kci_config_strings probes;     /* "type=payload" */
    kci_config_strings pretrusted; /* nodes trusted by the ranking from the start */
    kci_config_strings peers;      /* the other arbiters whose votes count; none: any */
    char *verdict_storage;         /* "local" (the file) or "jetstream" (a stream) */
    char *verdict_stream;          /* the stream's name (jetstream) */
    int64_t replicas;              /* the stream's replicas when this arbiter creates it */
    char *verdict_servers;         /* the JetStream servers; NULL: the arbiter's connection */
    kci_config_strings peer_keys;  /* "<id>=<hex key>": votes must be signed by it */
    kci_config_strings node_keys;  /* "<node>=<hex key>": its signed QoS samples count */
} kci_arbiter_settings;

const kci_config_key *kci_arbiter_settings_keys(size_t *count);
void kci_arbiter_settings_init(kci_arbiter_settings *settings);
kc_err kci_arbiter_settings_check(const kci_arbiter_settings *settings, char *error,
                                  size_t error_size);
/* Fills config from the defaults and settings; probe_texts (count
 * KCI_ARBITER_PROBES_MAX) receives copies of the probes that config's
 * probes point into, freed with kci_arbiter_probe_texts_free after
 * kci_arbiter_start (which copies what it keeps). */
kc_err kci_arbiter_settings_runtime(const kci_arbiter_settings *settings,
                                    kci_arbiter_config *config, char **probe_texts, char *error,
                                    size_t error_size);
void kci_arbiter_probe_texts_free(char **probe_texts);
void kci_arbiter_settings_free(kci_arbiter_settings *settings);

#endif
