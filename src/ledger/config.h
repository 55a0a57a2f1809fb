/* config.h - the ledger's settings (docs/ledger.md): the `ledger { }` block
 * of kcobrad's config and `kcobra ledger serve`'s flags, from one table
 * (src/common/config_keys.h). */
#ifndef KCI_LEDGER_CONFIG_H
#define KCI_LEDGER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config_keys.h"
#include "ledger/serve.h"
#include "service/lease_settings.h"

#define KCI_LEDGER_STORAGE_LOCAL "local"
#define KCI_LEDGER_STORAGE_JETSTREAM "jetstream"

typedef struct kci_ledger_settings {
    bool enabled;             /* kcobrad runs it (file only); default false */
    char *dir;                /* LMDB data and the mint's key */
    int64_t workers;          /* threads that parse and verify; default one per core */
    bool mint;                /* false: refuse kc.ledger.mint (another ledger mints) */
    int64_t map_bytes;        /* LMDB map size (address space) */
    int64_t reap_interval_ms; /* how often the reaper runs */
    int64_t reap_age_ms;      /* how long a retired coin keeps its trail */
    char *storage;            /* "local" (LMDB here) or "jetstream" (replicated) */
    char *stream;             /* jetstream: the log's stream */
    int64_t replicas;         /* jetstream: the stream's replicas when this ledger makes it */
    kci_lease_settings lease; /* jetstream: one active ledger (lease_* keys) */
    /* kcobrad only: who may publish kc.ledger.mint (src/broker/reserve.h) */
    kci_config_strings operators; /* the users who may mint; default none */
    bool mint_open;               /* every client may mint (kcobrad warns); default false */
} kci_ledger_settings;

const kci_config_key *kci_ledger_settings_keys(size_t *count);
/* The defaults; dir may be NULL (kcobra: --dir is required). */
kc_err kci_ledger_settings_init(kci_ledger_settings *settings, const char *dir);
kc_err kci_ledger_settings_check(const kci_ledger_settings *settings, char *error,
                                 size_t error_size);
/* kci_ledger_start's parameters (pointers into settings). */
kci_ledger_config kci_ledger_settings_runtime(const kci_ledger_settings *settings,
                                              const char *node);
void kci_ledger_settings_free(kci_ledger_settings *settings);

#endif
