/* config.h - the persister's settings (docs/queue.md): the `persister { }`
 * block of kcobrad's config and `kcobra queue serve`'s flags, from one
 * table (src/common/config_keys.h). kci_persister_settings_runtime turns
 * them into kci_persister_start's parameters. */
#ifndef KCI_QUEUE_CONFIG_H
#define KCI_QUEUE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config_keys.h"
#include "queue/persister.h"
#include "service/lease_settings.h"

typedef struct kci_persister_settings {
    bool enabled;                      /* kcobrad runs it (file only); default true */
    char *dir;                         /* the log's directory */
    char *durability;                  /* "batch", "always" or "none" */
    int64_t segment_bytes;             /* a segment file's size */
    int64_t redelivery_timeout_ms;     /* dispatched again after this long without a reply */
    int64_t redelivery_backoff_max_ms; /* the longest wait between dispatches */
    int64_t attempts_max;              /* dispatches before a request is dead */
    int64_t retention_ms;              /* replied segments kept this long; 0: until replied */
    bool skip_corrupt;                 /* start past corrupt records in the middle */
    bool record_requests;              /* also keep plain kc.req.> traffic and its replies */
    int64_t probe_interval_ms;         /* a type nobody serves is probed this often */
    char *storage;                     /* "local" (the log in dir) or "jetstream" */
    char *stream;                      /* jetstream: the stream's name */
    int64_t replicas;                  /* jetstream: the stream's replicas when created */
    int64_t stream_max_age_ms;         /* jetstream: the stream's max age when created; 0: none */
    kci_lease_settings lease;          /* jetstream: one active, the others standing by */
} kci_persister_settings;

const kci_config_key *kci_persister_settings_keys(size_t *count);
/* The defaults, the log in dir; KC_ERR_NOMEM. */
kc_err kci_persister_settings_init(kci_persister_settings *settings, const char *dir);
kc_err kci_persister_settings_check(const kci_persister_settings *settings, char *error,
                                    size_t error_size);
/* kci_persister_start's parameters (pointers into settings). */
kci_persister_config kci_persister_settings_runtime(const kci_persister_settings *settings,
                                                    const char *node);
/* The lease's settings (jetstream): key, holder and callbacks are left to
 * replicated.c. */
void kci_persister_settings_lease(const kci_persister_settings *settings, kci_lease_config *lease);
void kci_persister_settings_free(kci_persister_settings *settings);

#endif
